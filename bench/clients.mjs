#!/usr/bin/env node
// Issue 19, "Ten laptops on one server": N clients (each its own config and data dirs, each a real
// `lipsync run` daemon) paired with ONE server folder holding the N-file tree. For each count of
// clients: one small file written on one client (the writer rotates) until it is on ALL the other
// clients with its content (polled every 20 ms): p50, p95, max; and, with every client idle and up
// to date, what the sync costs on the server: its processes (everything below the bench sshd's
// listener: the sessions of these clients and what runs in them, perl, inotifywait, sh, find, tail,
// rsync; plus any process outside that tree with its working directory or an open file in the server
// folder, e.g. a watcher that detached), their summed RSS, their inotify watches (`inotify wd:` lines
// of /proc/PID/fdinfo), and each client's RSS (daemon, its children and its ssh ControlMaster).
// Nothing here depends on how the server is watched (one watcher per client or one shared per
// folder): it measures whatever runs there.
// Setup (untimed): one copy of the cached tree is the server folder, and every client starts from a
// `cp -a` of it (identical content and mtimes), so its first sync only compares (rsync --checksum,
// no transfer). The cached tree itself is only read (other benches may use it in place meanwhile).
// Clients are added as the counts grow (1,5,10: the first client stays, four join, then five more),
// and stopped when a count is lower than the one before.
// Usage: node bench/clients.mjs [--clients 1,5,10] [--files 100000] [--reps 10] [--idle-wait 180]
//        [--net loopback|broadband|far] [--seed 1] [--skip-build]
import { performance } from 'node:perf_hooks';
import { cpus, release, totalmem } from 'node:os';
import { mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, percentile, sh, shOk, sleep, treeProcs } from './lib/util.mjs';
import { BIN, makeEnv, startDaemon, status, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({
  clients: { type: 'string', default: '1,5,10' },
  reps: { type: 'string', default: '10' },
  'idle-wait': { type: 'string', default: '180' },
});
const COUNTS = opt.clients.split(',').map((s) => Number(s.trim()));
if (!COUNTS.length || COUNTS.some((n) => !Number.isInteger(n) || n < 1))
  throw new Error(`--clients ${opt.clients}: expected a list of counts ≥ 1, e.g. 1,5,10`);
const REPS = Number(opt.reps);
/**
 * How long the clients stay idle before the idle sample: past the checkpoint each writes on the server
 * up to 30 s after its last sync, and the engine's script session that ends 120 s after its last script.
 */
const IDLE_WAIT_MS = Number(opt['idle-wait']) * 1000;
/** A change not on every other client after this long is counted as lost. */
const LOST_MS = 60_000;
const POLL_MS = 20;
const PROBE = 'bench-clients';
const MiB = (b) => (b / 2 ** 20).toFixed(1);

const setup = await oneRowSetup(opt, 'clients');
const { N: FILES, fast, host, work } = setup;
const S = join(work, 's');

// ---- processes, from /proc

const readOr = (f, dflt = '') => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return dflt;
  }
};
const cmdlineOf = (pid) => readOr(`/proc/${pid}/cmdline`).split('\0').join(' ').trim();
const allPids = () =>
  readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .map(Number);
const rssKb = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readOr(`/proc/${pid}/status`))?.[1] ?? 0);
/** Proportional set size: shared pages divided among the processes sharing them (sums to the memory used). */
const pssKb = (pid) => Number(/^Pss:\s+(\d+) kB/m.exec(readOr(`/proc/${pid}/smaps_rollup`))?.[1] ?? 0);
const ppidOf = (pid) => {
  const st = readOr(`/proc/${pid}/stat`);
  return Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1] ?? 0);
};
/** The fdinfo text of each inotify fd of `pid` (one `inotify wd:` line per watch). */
function inotifyFds(pid) {
  const out = [];
  let fds = [];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    let link = '';
    try {
      link = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue;
    }
    if (link === 'anon_inode:inotify') out.push(readOr(`/proc/${pid}/fdinfo/${fd}`));
  }
  return out;
}
/**
 * inotify watches held by `pids`: the `inotify wd:` lines of their inotify fds. An fd a child
 * inherited (same instance, so the same fdinfo text as one its parent holds) is counted once.
 */
function watchesOf(pids) {
  const fds = new Map(pids.map((p) => [p, inotifyFds(p)]));
  let n = 0;
  for (const [pid, list] of fds) {
    const parent = fds.get(ppidOf(pid)) ?? [];
    for (const text of list) {
      if (parent.includes(text)) continue;
      n += (text.match(/^inotify wd:/gm) ?? []).length;
    }
  }
  return n;
}
/** Whether `pid`'s working directory or one of its open files is in `dir`. */
function usesDir(pid, dir) {
  const inside = (p) => p === dir || p.startsWith(`${dir}/`);
  try {
    if (inside(readlinkSync(`/proc/${pid}/cwd`))) return true;
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        if (inside(readlinkSync(`/proc/${pid}/fd/${fd}`))) return true;
      } catch {
        /* closed meanwhile */
      }
    }
  } catch {
    /* gone, or not ours to read */
  }
  return false;
}
/** "sshd-session×10, perl×10, sh×20": process names and counts, most first. */
const composition = (procs) => {
  const by = new Map();
  for (const p of procs) by.set(p.comm, (by.get(p.comm) ?? 0) + 1);
  return [...by]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([c, k]) => `${c}×${k}`)
    .join(', ');
};

// ---- clients

/** Every client made so far: { name, dir, e, d (its daemon while running) }. */
const clients = [];
/**
 * A client's processes: its daemon's tree, and its ssh ControlMaster (`ControlPersist` detaches it
 * from the daemon; found by its control socket, under the client's data dir) with what runs below it.
 */
function clientProcs(c) {
  const masters = allPids().filter(
    (p) => readOr(`/proc/${p}/comm`).trim() === 'ssh' && cmdlineOf(p).includes(`${c.e.dataDir}/`),
  );
  return treeProcs([c.d.proc.pid, ...masters]);
}
/**
 * The server side of the sync: every process below the bench sshd's listener (not the listener
 * itself), plus processes outside it, not the clients' nor this script's, whose working directory
 * or an open file is in the server folder.
 */
function serverProcs(running) {
  const inTree = treeProcs([fast.pid]).filter((p) => p.pid !== fast.pid);
  const known = new Set([fast.pid, process.pid, ...inTree.map((p) => p.pid)]);
  for (const c of running) for (const p of clientProcs(c)) known.add(p.pid);
  const outside = allPids()
    .filter((p) => !known.has(p) && usesDir(p, S))
    .map((pid) => ({ pid, comm: readOr(`/proc/${pid}/comm`).trim() }));
  return { procs: [...inTree, ...outside], outside };
}
/** The processes of each ssh connection to the bench sshd (a session's subtree), as `comm: cmdline`. */
function sessions() {
  return treeProcs([fast.pid])
    .filter((p) => ppidOf(p.pid) === fast.pid)
    .map((root) =>
      treeProcs([root.pid]).map((p) => `${p.comm}: ${cmdlineOf(p.pid).replace(/\s+/g, ' ').slice(0, 60)}`),
    );
}
/** One sample of the server side and of each running client. */
function sample(running) {
  const { procs, outside } = serverProcs(running);
  const pids = procs.map((p) => p.pid);
  return {
    sessions: sessions(),
    procs: procs.length,
    rss: pids.reduce((s, p) => s + rssKb(p), 0) * 1024,
    pss: pids.reduce((s, p) => s + pssKb(p), 0) * 1024,
    watches: watchesOf(pids),
    composition: composition(procs),
    outside: outside.length ? composition(outside) : '',
    clients: running.map((c) => {
      const cp = clientProcs(c);
      const cpids = cp.map((p) => p.pid);
      return {
        rss: cpids.reduce((s, p) => s + rssKb(p), 0) * 1024,
        watches: watchesOf(cpids),
        composition: composition(cp),
      };
    }),
  };
}
/** `k` samples 1 s apart: the medians, and the composition of the sample nearest the median count. */
async function measureIdle(running, k = 5) {
  const xs = [];
  for (let i = 0; i < k; i++) {
    if (i) await sleep(1000);
    xs.push(sample(running));
  }
  const procs = median(xs.map((x) => x.procs));
  const mid = xs.reduce((b, x) => (Math.abs(x.procs - procs) < Math.abs(b.procs - procs) ? x : b));
  const perClient = running.map((_, j) => ({
    rss: median(xs.map((x) => x.clients[j].rss)),
    watches: median(xs.map((x) => x.clients[j].watches)),
  }));
  return {
    procs,
    procsRange: [Math.min(...xs.map((x) => x.procs)), Math.max(...xs.map((x) => x.procs))],
    rss: median(xs.map((x) => x.rss)),
    pss: median(xs.map((x) => x.pss)),
    watches: median(xs.map((x) => x.watches)),
    composition: mid.composition,
    outside: mid.outside,
    counts: xs.map((x) => x.procs),
    sessions: mid.sessions,
    clientRss: median(perClient.map((c) => c.rss)),
    clientRssRange: [Math.min(...perClient.map((c) => c.rss)), Math.max(...perClient.map((c) => c.rss))],
    clientWatches: median(perClient.map((c) => c.watches)),
    clientComposition: mid.clients[0]?.composition ?? '',
  };
}

/** Client `i`'s folder: a copy of the server folder (before any client is added: `add` writes .lipsync/ there). */
async function copyClient(i) {
  const name = `c${i + 1}`;
  const dir = join(work, name);
  await shOk('cp', ['-a', S, dir]);
  return { name, dir, e: makeEnv(join(work, `env-${name}`), fast.sshConfigFile), d: null };
}
async function startClient(c) {
  const t0 = Date.now();
  c.d = await startDaemon(c.e);
  await waitUpToDate(c.e, 0, 3_600_000, 200);
  log(`${c.name} up to date after ${fmt(Date.now() - t0)}`);
}
const allUpToDate = (running) => Promise.all(running.map((c) => waitUpToDate(c.e, 0, 600_000, 50)));

const token = (path, tok) => readOr(path).startsWith(tok);
/** One change written on `writer`, until it is on every other running client (and when on the server). */
async function change(running, writer, rel) {
  const tok = `clients ${running.length} ${rel} from ${writer.name} ${Date.now()}\n`;
  const pending = new Map(running.filter((c) => c !== writer).map((c) => [c.name, join(c.dir, rel)]));
  pending.set('server', join(S, rel));
  const at = {};
  const t0 = performance.now();
  writeFileSync(join(writer.dir, rel), tok.padEnd(2048, '.'));
  while (pending.size && performance.now() - t0 < LOST_MS) {
    await sleep(POLL_MS);
    for (const [k, p] of pending)
      if (token(p, tok)) {
        at[k] = performance.now() - t0;
        pending.delete(k);
      }
  }
  const others = Object.entries(at).filter(([k]) => k !== 'server');
  return {
    server: at.server ?? null,
    all: pending.size ? null : others.length ? Math.max(...others.map(([, v]) => v)) : null,
    first: others.length ? Math.min(...others.map(([, v]) => v)) : null,
    lost: [...pending.keys()],
  };
}

const rows = [];
const stopAll = () => Promise.all(clients.filter((c) => c.d).map((c) => c.d.stop().then(() => (c.d = null))));
try {
  // The server folder: a copy of the cached tree without anything another bench left in it.
  log(`copying the tree (${FILES} files) to the server folder…`);
  await shOk('cp', ['-a', setup.A, S]);
  for (const e of readdirSync(S)) if (!/^t\d+$/.test(e)) rmSync(join(S, e), { recursive: true, force: true });
  mkdirSync(join(S, PROBE));
  const max = Math.max(...COUNTS);
  log(`copying it for ${max} clients…`);
  const tc = performance.now();
  for (let i = 0; i < max; i++) clients.push(await copyClient(i));
  const copyMs = (performance.now() - tc) / max;
  for (const c of clients)
    await shOk(process.execPath, [BIN, 'add', c.dir, `${host}:${S}`, '--id', 'c'], { env: c.e.env });
  await shOk('sync', []);
  const firstSyncs = [];

  for (const n of COUNTS) {
    const running = clients.slice(0, n);
    await Promise.all(clients.slice(n).map((c) => c.d?.stop().then(() => (c.d = null))));
    for (const c of running)
      if (!c.d) {
        const t0 = performance.now();
        await startClient(c);
        firstSyncs.push(performance.now() - t0);
      }
    await allUpToDate(running);
    const st = await Promise.all(running.map((c) => status(c.e)));
    const watcher = [...new Set(st.map((s) => s?.pairs[0]?.remoteWatcher ?? '?'))].join(', ');
    log(`${n} clients up to date (server watcher: ${watcher})`);

    const all = [],
      toServer = [],
      first = [],
      lost = [];
    for (let i = 0; i < REPS; i++) {
      await allUpToDate(running);
      await sleep(1500);
      const writer = running[i % n];
      const r = await change(running, writer, `${PROBE}/n${n}-r${i}.txt`);
      if (r.server !== null) toServer.push(r.server);
      if (r.all !== null) all.push(r.all);
      if (r.first !== null) first.push(r.first);
      if (r.lost.length) lost.push(`rep ${i + 1} from ${writer.name}: not on ${r.lost.join(', ')}`);
      log(
        `${n} clients, change ${i + 1} on ${writer.name}: server ${r.server === null ? 'lost' : fmt(r.server)}` +
          (n > 1 ? `, first other ${fmt(r.first ?? NaN)}, all others ${r.all === null ? 'LOST' : fmt(r.all)}` : ''),
      );
    }
    await allUpToDate(running);
    await sleep(5000);
    const busy = await measureIdle(running);
    log(
      `${n} clients, 5 s after the last change: server ${busy.procs} procs (${busy.composition}), ` +
        `${MiB(busy.rss)} MiB, ${busy.watches} watches`,
    );
    log(`waiting ${IDLE_WAIT_MS / 1000} s idle…`);
    const since = Date.now();
    await sleep(IDLE_WAIT_MS);
    const st2 = await Promise.all(running.map((c) => status(c.e)));
    const stillIdle = st2.every((s) => s?.pairs.every((p) => p.state === 'idle' && p.lastSyncAt <= since));
    const idle = await measureIdle(running);
    log(
      `${n} clients idle: server ${idle.procs} procs (${idle.composition}${idle.outside ? `; outside the sshd: ${idle.outside}` : ''}), ` +
        `${MiB(idle.rss)} MiB, ${idle.watches} watches; client RSS median ${MiB(idle.clientRss)} MiB (${idle.clientComposition})`,
    );
    log(`  samples: ${idle.counts.join(' ')} processes; per ssh connection:`);
    for (const ps of idle.sessions) log(`  - ${ps.join('; ')}`);
    rows.push({ n, all, toServer, first, lost, busy, idle, watcher, stillIdle });
  }
  await stopAll();

  // ---- report
  const base = rows[0];
  /** The change from the first row per client added, formatted by `f`; '—' on a row of as many clients. */
  const perExtra = (r, key, f) => {
    if (r.n === base.n) return '—';
    const x = (r.idle[key] - base.idle[key]) / (r.n - base.n);
    return `${x >= 0 ? '+' : ''}${f(x)}`;
  };
  const lat = (xs, p) => (xs.length ? fmt(p === 'max' ? Math.max(...xs) : percentile(xs, p)) : '—');
  const manifest = JSON.parse(readOr(join(setup.A, '..', 'manifest.json'), '{}'));
  const load = readOr('/proc/loadavg').trim();
  const inotifyLimits = ['max_user_watches', 'max_user_instances']
    .map((k) => `${k} ${readOr(`/proc/sys/fs/inotify/${k}`).trim()}`)
    .join(', ');
  const lines = [
    `# ${COUNTS.join(', ')} clients on one server folder, ${FILES} files (issue 19)`,
    '',
    `Command: \`node bench/clients.mjs --clients ${COUNTS.join(',')} --files ${FILES} --reps ${REPS}` +
      `${opt['idle-wait'] !== '180' ? ` --idle-wait ${opt['idle-wait']}` : ''}${opt.seed !== '1' ? ` --seed ${opt.seed}` : ''}` +
      `${opt.net !== 'loopback' ? ` --net ${opt.net}` : ''}\`${process.env.LIPSYNC_SHARED_WATCHER === '0' ? ' with LIPSYNC_SHARED_WATCHER=0 (each client watches the server alone)' : ''}, ` +
      `${new Date().toISOString()}, at ${(await sh('git', ['rev-parse', '--short', 'HEAD'])).stdout.trim()}, load at the end ${load}.`,
    '',
    `Machine: ${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ` +
      `Linux ${release()}, node ${process.version}, ${(await sh('rsync', ['--version'])).stdout.split('\n')[0]}, ` +
      `${(await sh('ssh', ['-V'])).stderr.trim()}; inotify ${inotifyLimits}. Server and clients are this one ` +
      `machine (the bench's sshd on 127.0.0.1${opt.net !== 'loopback' ? `, through the ${opt.net} relay` : ''}).`,
    '',
    `Tree: ${FILES} files, ${manifest.dirs ?? '?'} directories, ${manifest.bytes ? (manifest.bytes / 1e6).toFixed(1) : '?'} MB, ` +
      `seed ${opt.seed}. Each client starts from a \`cp -a\` of the server folder (${fmt(copyMs)} a copy), so its ` +
      `first sync only compares (untimed: ${firstSyncs.map((ms) => fmt(ms)).join(', ')}). Server watcher as the ` +
      `clients report it: ${[...new Set(rows.map((r) => r.watcher))].join('; ')}.`,
    '',
    '| clients | change→all others p50 | p95 | max | server procs | server RSS MiB | server RSS per extra client | server PSS MiB | server PSS per extra client | server inotify watches | watches per extra client | client RSS MiB (median) |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${lat(r.all, 50)} | ${lat(r.all, 95)} | ${lat(r.all, 'max')} | ${r.idle.procs} | ${MiB(r.idle.rss)} | ` +
        `${perExtra(r, 'rss', MiB)} | ${MiB(r.idle.pss)} | ${perExtra(r, 'pss', MiB)} | ${r.idle.watches} | ${perExtra(r, 'watches', Math.round)} | ${MiB(r.idle.clientRss)} |`,
    ),
    '',
    `Latency: ${REPS} changes per row, each a new 2 KiB file written on one client (client 1, 2, … in turn), ` +
      `1.5 s after every client was up to date, until it is readable with its content on every other client ` +
      `(polled every ${POLL_MS} ms; p95 is the nearest rank: with fewer than 20 changes, the highest). ` +
      `Server, idle: ${IDLE_WAIT_MS / 1000} s after the last change (past the checkpoint a client writes on the server up to 30 s after its last sync, and the script session that ends 120 s after its last script), ` +
      `medians of 5 samples 1 s apart: every process below the bench sshd's listener (the listener itself left ` +
      `out) and any other process with its working directory or an open file in the server folder; RSS is VmRSS ` +
      `summed (shared pages counted in each process), PSS the proportional set size summed (shared pages ` +
      `divided among the processes sharing them: the memory the server spends); watches are the \`inotify wd:\` lines of their inotify ` +
      `fds. "Per extra client" is the change from the first row divided by the clients added. Client RSS: the ` +
      `daemon, its children and its ssh ControlMaster (detached by ControlPersist), the median over the clients.`,
    '',
    '| clients | change→server p50 | first other client p50 | lost | server procs, idle (what) | 5 s after the last change: procs, RSS MiB, watches | client RSS min–max MiB | client inotify watches (median) |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.n} | ${lat(r.toServer, 50)} | ${lat(r.first, 50)} | ${r.lost.length} | ${r.idle.procs}` +
        `${r.idle.procsRange[0] !== r.idle.procsRange[1] ? ` (${r.idle.procsRange.join('–')})` : ''}: ${r.idle.composition}` +
        `${r.idle.outside ? `; outside the sshd tree: ${r.idle.outside}` : ''} | ${r.busy.procs}, ${MiB(r.busy.rss)}, ` +
        `${r.busy.watches} | ${MiB(r.idle.clientRssRange[0])}–${MiB(r.idle.clientRssRange[1])} | ${r.idle.clientWatches} |`,
    ),
    '',
    ...rows.flatMap((r) => [
      ...r.lost.map((l) => `- ${r.n} clients, lost (not there after ${LOST_MS / 1000} s): ${l}`),
      ...(r.stillIdle
        ? []
        : [`- ${r.n} clients: a client synced during the idle wait (the idle sample may include it)`]),
    ]),
    `- one client's processes (idle, the last row): ${rows.at(-1).idle.clientComposition}`,
    `- one ssh connection on the server (idle, the last row), its processes: ${rows.at(-1).idle.sessions[0]?.join('; ') ?? 'none'}`,
    '',
  ];
  writeResult(lines, FILES, 'clients');
} catch (err) {
  for (const c of clients.filter((x) => x.d)) log(`${c.name}'s daemon output (tail):\n${c.d.output().slice(-3000)}`);
  throw err;
} finally {
  await stopAll();
  await setup.fast.stop();
  await setup.server.stop();
  await sh('ionice', ['-c3', 'rm', '-rf', work]);
}
