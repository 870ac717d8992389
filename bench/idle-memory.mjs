#!/usr/bin/env node
// Row 3 alone, with where the memory is: the idle daemon's RSS after its first sync of the tree
// (to an empty server folder) and again after a restart, per process, with the engine's own
// account of its memory after the heap release (LIPSYNC_TRACE: V8 heap used and committed,
// external), so what stays can be told apart: JavaScript objects or native memory.
// The cached tree is used in place as client A (its .lipsync/ is removed again).
// Usage: node bench/idle-memory.mjs [--files 100000] [--seed 1] [--tunables GLIBC_TUNABLES] [--skip-build] [--net loopback|broadband|far]
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { mastersOf, shOk, sleep, treePids } from './lib/util.mjs';
import { BIN, makeEnv, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({ tunables: { type: 'string' } });
const mib = (kb) => `${(kb / 1024).toFixed(1)} MiB`;
const setup = await oneRowSetup(opt, 'idle-memory');
const { N, A, fast, host, work } = setup;

/**
 * Where a process's resident memory is (kB), from /proc/PID/smaps: the malloc heap ([heap]),
 * other anonymous mappings (V8's pages, glibc's other arenas, large malloc blocks), stacks,
 * and file-backed pages (the node binary's code, shared libraries), largest first.
 */
function whereResident(pid) {
  const sums = new Map();
  let name = null;
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ (\d+)\s*(.*)$/.exec(line);
    if (head) {
      const path = head[2].trim();
      name = path === '' ? 'anon' : path.startsWith('/') ? `file ${path.split('/').pop()}` : path;
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss && name) sums.set(name, (sums.get(name) ?? 0) + Number(rss[1]));
  }
  return [...sums].filter(([, kb]) => kb >= 1024).sort((a, b) => b[1] - a[1]);
}
/** RSS (kB) of each process of the daemon's tree, 5 s after it is up to date; where node's is. */
async function idle(d, dataDir) {
  await sleep(5000);
  // With the ControlMaster, which left the daemon's tree when the ssh that started it ended.
  return [...treePids([d.proc.pid]), ...mastersOf(dataDir)].map((p) => {
    const status = readFileSync(`/proc/${p}/status`, 'utf8');
    const name = /Name:\s+(\S+)/.exec(status)[1];
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)[1]);
    return {
      name,
      kb: kb('VmRSS'),
      anon: kb('RssAnon'),
      file: kb('RssFile'),
      where: name === 'node' ? whereResident(p) : [],
    };
  });
}
const memoryLines = (d) =>
  d
    .output()
    .split('\n')
    .filter((l) => l.includes('memory after the heap release'))
    .map((l) => l.replace(/^\[trace\] /, ''));

const rows = [];
let d;
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  const S = join(work, 's');
  mkdirSync(S);
  const e = makeEnv(join(work, 'env'), fast.sshConfigFile, {
    LIPSYNC_TRACE: '1',
    ...(opt.tunables ? { GLIBC_TUNABLES: opt.tunables } : {}),
  });
  await shOk(process.execPath, [BIN, 'add', A, `${host}:${S}`, '--id', 'a'], { env: e.env });
  for (const when of ['after the first sync', 'after a restart (clean stop)']) {
    const t0 = Date.now();
    d = await startDaemon(e);
    await waitUpToDate(e, t0, 3_600_000, 200);
    log(`${when}: up to date after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const procs = await idle(d, e.dataDir);
    rows.push({ when, procs, memory: memoryLines(d) });
    await d.stop();
    d = null;
  }
  const lines = [
    `# Idle memory after the first sync and after a restart, ${N} files (row 3 alone)`,
    '',
    `Command: \`node bench/idle-memory.mjs --files ${N}${opt.tunables ? ` --tunables ${opt.tunables}` : ''}\`, ${new Date().toISOString()}.`,
    '',
    '| when | total | per process (anonymous + file-backed) | the engine after its heap release (last) |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.when} | ${mib(r.procs.reduce((s, p) => s + p.kb, 0))} | ${r.procs.map((p) => `${p.name} ${mib(p.kb)} (${mib(p.anon)} + ${mib(p.file)})`).join(', ')} | ${r.memory.at(-1) ?? '(no release: the heap had little slack)'} |`,
    ),
    '',
    "Where node's resident memory is (mappings of 1 MiB or more, from /proc/PID/smaps):",
    '',
    ...rows.map(
      (r) =>
        `- ${r.when}: ${r.procs
          .filter((p) => p.name === 'node')
          .flatMap((p) => p.where.map(([m, kb]) => `${m} ${mib(kb)}`))
          .join(', ')}`,
    ),
    '',
  ];
  writeResult(lines, N, 'idle-memory');
} finally {
  await oneRowTeardown(setup, d);
}
