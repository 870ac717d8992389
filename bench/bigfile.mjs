#!/usr/bin/env node
// Issue 18 §5, big files: one file of --size-mb MiB (1 GiB by default) of random content.
// (a) First copy: the complete file appears in client A (renamed in from a flushed copy beside
//     it: the "file closed" moment, without its own writeback on the clock) until it is at the
//     server path with its full size; against `rsync -a` of the same content over the same ssh
//     (relay) into a folder without it. The digest of both copies is checked afterwards.
// (b) A 1 MiB edit in the middle (1 MiB overwritten in place at size/2, 512 MiB for 1 GiB; the
//     size is kept), from the close until the new version is at the server path; against
//     `rsync -a --stats` of the same edit to a server copy that holds the old version (over ssh
//     rsync sends a delta by default). Data sent: lipsync's activity log (`push` records'
//     `bytes`, rsync's "Literal data" of its push), rsync's own --stats.
// Peers alternate which goes first, each rep after a `sync`. A small tree (--files 1000) is
// client A, so the big file is most of what there is.
// Usage: node bench/bigfile.mjs [--size-mb 1024] [--reps 3] [--files 1000] [--skip-build] [--net loopback|broadband|far]
import { performance } from 'node:perf_hooks';
import { createCipheriv, createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  createReadStream,
  fsyncSync,
  mkdirSync,
  openSync,
  renameSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { median, sh, shOk, waitUntil } from './lib/util.mjs';
import { BIN, collectPhases, makeEnv, phaseRows, readLog, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({
  files: { type: 'string', default: '1000' },
  'size-mb': { type: 'string', default: '1024' },
  reps: { type: 'string', default: '3' },
});
const REPS = Number(opt.reps);
const MIB = 2 ** 20;
const SIZE = Number(opt['size-mb']) * MIB;
const EDIT = Math.min(MIB, SIZE);
const EDIT_AT = Math.floor(SIZE / 2 / MIB) * MIB;

/** Seeded incompressible bytes: the AES-128-CTR keystream of key `seed` (~1 GB/s). */
function keystream(seed) {
  const key = createHash('sha256').update(`lipsync-bigfile-${seed}`).digest();
  const c = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  const zeros = Buffer.alloc(8 * MIB);
  return (n) => c.update(zeros.subarray(0, n));
}
/** Writes `size` bytes of keystream(seed) to `file`, flushed; returns its sha256. */
function generate(file, size, seed) {
  const next = keystream(seed);
  const h = createHash('sha256');
  const fd = openSync(file, 'w');
  try {
    for (let left = size; left > 0;) {
      const b = next(Math.min(left, 8 * MIB));
      h.update(b);
      for (let o = 0; o < b.length;) o += writeSync(fd, b, o);
      left -= b.length;
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
/** Overwrites EDIT bytes at EDIT_AT in place (size kept) with keystream(seed); closed on return. */
function edit(file, seed) {
  const b = keystream(seed)(EDIT);
  const fd = openSync(file, 'r+');
  try {
    for (let o = 0; o < b.length;) o += writeSync(fd, b, o, b.length - o, EDIT_AT + o);
  } finally {
    closeSync(fd);
  }
}
const sha256 = (file) =>
  new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file, { highWaterMark: 4 * MIB })
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
const statOrNull = (f) => {
  try {
    return statSync(f, { bigint: true });
  } catch {
    return null;
  }
};
/** rsync --stats figure `name` (bytes), e.g. "Literal data: 1,048,576 bytes". */
const rsyncStat = (out, name) => {
  const m = new RegExp(`^${name}: ([\\d,.']+)`, 'm').exec(out);
  return m ? Number(m[1].replace(/[,.']/g, '')) : NaN;
};
const mbps = (ms) => SIZE / MIB / (ms / 1000);
const mb = (bytes) => `${(bytes / MIB).toFixed(2)} MiB`;

const setup = await oneRowSetup(opt, 'bigfile');
const { N, A, fast, host, rsh, work } = setup;
const names = [];

let d;
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  if (statSync(A).dev !== statSync(work).dev) throw new Error(`${A} and ${work} are not on one filesystem`);
  const S = join(work, 's'),
    S2 = join(work, 's2'),
    G = join(work, 'gen'),
    R = join(work, 'rsrc');
  for (const dir of [S, S2, G, R]) mkdirSync(dir);
  const e = makeEnv(join(work, 'env'), fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await shOk(process.execPath, [BIN, 'add', A, `${host}:${S}`, '--id', 'a'], { env: e.env });
  log('first sync of the small tree (untimed)…');
  d = await startDaemon(e);
  await waitUpToDate(e, 0, 3_600_000, 200);

  let t = performance.now();
  const src = join(G, 'big.dat');
  const digest = generate(src, SIZE, Number(opt.seed));
  log(`generated ${mb(SIZE)} of random content in ${fmt(performance.now() - t)}`);

  /** Until the pair is up to date after `t0wall`: the daemon's phases and the push records' bytes since. */
  const settle = async (t0wall, from, logFrom, phases) => {
    await waitUpToDate(e, t0wall);
    const upMs = Date.now() - t0wall;
    collectPhases(d.output().slice(from), t0wall, phases);
    const pushes = readLog(e)
      .slice(logFrom)
      .filter((r) => r.event === 'push');
    return { upMs, bytes: pushes.reduce((s, r) => s + (r.bytes ?? 0), 0), records: pushes.length };
  };
  const emptyTrash = () => rmSync(join(S, '.lipsync', 'trash'), { recursive: true, force: true });

  // (a) First copy.
  const first = { lip: [], up: [], rsync: [], lipBytes: [], rsyncLiteral: [], phases: {} };
  let name;
  for (let i = 0; i < REPS; i++) {
    if (name) {
      // The previous rep's copies go (untimed): lipsync deletes its server copy (into the trash).
      const t0 = Date.now();
      rmSync(join(A, name));
      await waitUntil(() => !statOrNull(join(S, name)), 600_000, `${name} deleted on the server`, 20);
      await waitUpToDate(e, t0);
      emptyTrash();
      rmSync(join(S2, name));
    }
    name = `bigfile-${i}.dat`;
    names.push(name);
    const stage = join(work, name);
    copyFileSync(src, stage);
    const runLipsync = async () => {
      await shOk('sync', []);
      const from = d.output().length,
        logFrom = readLog(e).length;
      const t0wall = Date.now();
      const p0 = performance.now();
      renameSync(stage, join(A, name));
      await waitUntil(() => statOrNull(join(S, name))?.size === BigInt(SIZE), 3_600_000, `${name} on the server`, 5);
      first.lip.push(performance.now() - p0);
      const s = await settle(t0wall, from, logFrom, first.phases);
      first.up.push(s.upMs);
      first.lipBytes.push(s.bytes);
    };
    const runRsync = async () => {
      await shOk('sync', []);
      const r = await shOk('rsync', ['-a', '--stats', '-e', rsh, src, `${host}:${S2}/${name}`]);
      first.rsync.push(r.ms);
      first.rsyncLiteral.push(rsyncStat(r.stdout, 'Literal data'));
    };
    if (i % 2 === 0) {
      await runLipsync();
      await runRsync();
    } else {
      await runRsync();
      await runLipsync();
    }
    const [dl, dr] = [await sha256(join(S, name)), await sha256(join(S2, name))];
    if (dl !== digest || dr !== digest) throw new Error(`first copy ${i}: digest differs (lipsync ${dl}, rsync ${dr})`);
    log(
      `first copy ${i + 1}: lipsync ${fmt(first.lip.at(-1))} (${mbps(first.lip.at(-1)).toFixed(1)} MiB/s, up to date ` +
        `${fmt(first.up.at(-1))}); rsync ${fmt(first.rsync.at(-1))} (${mbps(first.rsync.at(-1)).toFixed(1)} MiB/s)`,
    );
  }

  // (b) 1 MiB edits in the middle of the last file. rsync's source is a copy of it beside the tree
  // (edited the same way), so that either peer can go first; its server copy holds the old version.
  const rsrc = join(R, name);
  copyFileSync(src, rsrc);
  emptyTrash();
  const ed = { lip: [], up: [], rsync: [], lipBytes: [], rsyncLiteral: [], rsyncSent: [], phases: {} };
  for (let j = 0; j < REPS; j++) {
    const seed = 1000 + j;
    const runLipsync = async () => {
      await shOk('sync', []);
      const before = statOrNull(join(S, name)).ino;
      const from = d.output().length,
        logFrom = readLog(e).length;
      const t0wall = Date.now();
      const p0 = performance.now();
      edit(join(A, name), seed);
      await waitUntil(() => statOrNull(join(S, name))?.ino !== before, 3_600_000, `edit ${j} on the server`, 5);
      ed.lip.push(performance.now() - p0);
      const s = await settle(t0wall, from, logFrom, ed.phases);
      ed.up.push(s.upMs);
      ed.lipBytes.push(s.bytes);
    };
    const runRsync = async () => {
      edit(rsrc, seed);
      await shOk('sync', []);
      const r = await shOk('rsync', ['-a', '--stats', '-e', rsh, rsrc, `${host}:${S2}/`]);
      ed.rsync.push(r.ms);
      ed.rsyncLiteral.push(rsyncStat(r.stdout, 'Literal data'));
      ed.rsyncSent.push(rsyncStat(r.stdout, 'Total bytes sent'));
    };
    if (j % 2 === 0) {
      await runLipsync();
      await runRsync();
    } else {
      await runRsync();
      await runLipsync();
    }
    const want = await sha256(join(A, name));
    const got = [await sha256(join(S, name)), await sha256(join(S2, name)), await sha256(rsrc)];
    if (got.some((x) => x !== want)) throw new Error(`edit ${j}: digest differs (${want} vs ${got.join(', ')})`);
    emptyTrash();
    log(
      `edit ${j + 1}: lipsync ${fmt(ed.lip.at(-1))} (${ed.lipBytes.at(-1)} bytes of data, up to date ${fmt(ed.up.at(-1))}); ` +
        `rsync ${fmt(ed.rsync.at(-1))} (${ed.rsyncLiteral.at(-1)} bytes literal)`,
    );
  }

  const ratio = (a, b) => (median(a) / median(b)).toFixed(2);
  const each = (a, b) => a.map((x, k) => (x / b[k]).toFixed(2)).join(', ');
  const yes = (ok) => (ok ? 'yes' : '**no**');
  const firstRatio = median(first.lip) / median(first.rsync);
  const editRatio = median(ed.lip) / median(ed.rsync);
  const editShare = median(ed.lipBytes) / SIZE;
  const push = (phases) =>
    Object.entries(phases)
      .find(([k]) => /^rsync push/.test(k))?.[1]
      .dur.map((x) => fmt(x))
      .join(', ') ?? '—';
  const ms = (xs) => xs.map(fmt).join(', ');
  const lines = [
    `# One ${mb(SIZE)} file: first copy and a ${mb(EDIT)} edit in its middle (issue 18 §5)`,
    '',
    `Command: \`node bench/bigfile.mjs --size-mb ${opt['size-mb']} --reps ${REPS} --files ${N}${opt.net === 'loopback' ? '' : ` --net ${opt.net}`}\`, ` +
      `${new Date().toISOString()}, load ${(await sh('cat', ['/proc/loadavg'])).stdout.trim()}, ` +
      `${(await sh('rsync', ['--version'])).stdout.split('\n')[0]}.`,
    '',
    'Medians of the reps; the peers alternate which goes first, each after a `sync`. lipsync: from the ' +
      'moment the file is complete in client A (renamed in, for the first copy; closed after the edit) until ' +
      'the new version is at the server path (polled every 5 ms); rsync: the whole `rsync -a` command (ssh ' +
      'connection included). Digests of every copy checked afterwards.',
    '',
    '| row | lipsync | rsync | lipsync/rsync | target | met |',
    '|---|---|---|---|---|---|',
    `| first copy, time | ${fmt(median(first.lip))} | ${fmt(median(first.rsync))} | ${firstRatio.toFixed(2)} (each rep: ${each(first.lip, first.rsync)}) | | |`,
    `| first copy, throughput | ${mbps(median(first.lip)).toFixed(1)} MiB/s | ${mbps(median(first.rsync)).toFixed(1)} MiB/s | ${(1 / firstRatio).toFixed(2)}× rsync's | ≥ 0.9× rsync's | ${yes(1 / firstRatio >= 0.9)} |`,
    `| ${mb(EDIT)} edit at ${EDIT_AT / MIB} MiB, time | ${fmt(median(ed.lip))} | ${fmt(median(ed.rsync))} | ${editRatio.toFixed(2)} (each rep: ${each(ed.lip, ed.rsync)}) | ≤ 1.2× rsync | ${yes(editRatio <= 1.2)} |`,
    `| ${mb(EDIT)} edit, data sent | ${median(ed.lipBytes)} B (${(editShare * 100).toFixed(3)} % of the file) | ${median(ed.rsyncLiteral)} B literal (${((median(ed.rsyncLiteral) / SIZE) * 100).toFixed(3)} %), ${median(ed.rsyncSent)} B sent in all | ${ratio(ed.lipBytes, ed.rsyncLiteral)} | ≤ 2 % of the file | ${yes(editShare <= 0.02)} |`,
    '',
    'Each rep:',
    '',
    '| | first copy | edit |',
    '|---|---|---|',
    `| lipsync, to the server path | ${ms(first.lip)} | ${ms(ed.lip)} |`,
    `| lipsync, until \`status\` up to date | ${ms(first.up)} | ${ms(ed.up)} |`,
    `| lipsync, its \`rsync push\` phase (LIPSYNC_TRACE) | ${push(first.phases)} | ${push(ed.phases)} |`,
    `| lipsync, data sent (log \`bytes\`) | ${first.lipBytes.join(', ')} | ${ed.lipBytes.join(', ')} |`,
    `| rsync -a | ${ms(first.rsync)} | ${ms(ed.rsync)} |`,
    `| rsync, Literal data | ${first.rsyncLiteral.join(', ')} | ${ed.rsyncLiteral.join(', ')} |`,
    '',
    'Phases of the first copy (LIPSYNC_TRACE; ms from the rename into client A, medians):',
    '',
    ...phaseRows(first.phases, median, fmt),
    '',
    'Phases of the edit (ms from the close, medians):',
    '',
    ...phaseRows(ed.phases, median, fmt),
    '',
  ];
  writeResult(lines, N, `bigfile-${opt['size-mb']}MiB`);
} finally {
  await oneRowTeardown(setup, d, names);
}
