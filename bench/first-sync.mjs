#!/usr/bin/env node
// Row 5 alone, for a tree too big for a full `npm run bench` in the time at hand: the first sync
// of the cached N-file tree (used in place as client A; its .lipsync/ is removed again) against
// plain `rsync -a` of the same tree over the same sshd, one rsync before lipsync and one after
// (the disk's speed drifts: compare lipsync with both). With LIPSYNC_TRACE phase sums, and row 3b:
// the peak RSS of the client (the daemon and every process below it, from /proc every 100 ms),
// what it was made of at the peak (per command, anonymous/file-backed), and the daemon's own
// account nearest the peak (LIPSYNC_TRACE_MEMORY_MS: V8 heap, external memory).
// The first sync runs under the daemon (`lipsync run`, as row 5 of run.mjs); --cli runs it with
// `lipsync sync` in-process instead (no watcher) and samples that process.
// Usage: node bench/first-sync.mjs [--files 1000000] [--seed 1] [--skip-before] [--skip-after] [--cli] [--log DAEMON_STDERR_FILE] [--daemon-env K=V]... [--skip-build] [--net loopback|broadband|far]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ROOT } from './lib/harness.mjs';
import { makeEnv, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';
import { discard, mastersOf, rssTreeSampler, sh, shOk } from './lib/util.mjs';

const opt = oneRowOptions({
  files: { type: 'string', default: '1000000' },
  'skip-before': { type: 'boolean', default: false },
  'skip-after': { type: 'boolean', default: false },
  cli: { type: 'boolean', default: false },
  log: { type: 'string' },
  'daemon-env': { type: 'string', multiple: true, default: [] },
});
const MiB = (b) => `${(b / 1048576).toFixed(1)} MiB`;
const setup = await oneRowSetup(opt, 'first');
const { N, A, fast, host, rsh, work } = setup;
const rows = [];
let d = null;
const peer = async (label) => {
  const P = join(work, `peer-${label}`);
  mkdirSync(P);
  await shOk('sync', []);
  const r = await sh('rsync', ['-a', '-e', rsh, `${A}/`, `${host}:${P}/`]);
  log(`rsync -a (${label}): ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}`);
  rows.push([`rsync -a of the tree (${label})`, r.ms, r.code]);
  await discard(P); // not removed: see discard()
};
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  if (!opt['skip-before']) await peer('before');
  const S = join(work, 's');
  mkdirSync(S);
  const e = makeEnv(work, fast.sshConfigFile, {
    LIPSYNC_TRACE: '1',
    LIPSYNC_TRACE_MEMORY_MS: '100',
    ...Object.fromEntries(opt['daemon-env'].map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])),
  });
  const { env } = e;
  await shOk(process.execPath, [join(ROOT, 'bin/lipsync.js'), 'add', A, `${host}:${S}`, '--id', 'p'], { env });
  await shOk('sync', []);
  let r, mem;
  if (opt.cli) {
    let s;
    r = await sh(join(ROOT, 'bin/lipsync'), ['sync'], { env, onSpawn: (c) => (s = rssTreeSampler(c.pid)) });
    mem = s.stop();
  } else {
    const t0 = Date.now();
    const p0 = performance.now();
    d = await startDaemon(e);
    const s = rssTreeSampler(d.proc.pid, 100, { extra: () => mastersOf(e.dataDir) });
    await waitUpToDate(e, t0, 3_600_000, 200);
    r = { ms: performance.now() - p0, code: 0, stderr: d.output() };
    mem = s.stop();
  }
  rows.push([`lipsync first sync${opt.cli ? ' (lipsync sync)' : ' (daemon)'}`, r.ms, r.code]);
  const memLines = [
    `peak RSS of the client ${MiB(mem.peak)} at ${(mem.at / 1000).toFixed(1)} s (${mem.samples} samples): ` +
      mem.parts.map((p) => `${p.comm}×${p.n} ${MiB(p.rss)} (anon ${MiB(p.anon)}, file ${MiB(p.file)})`).join(', '),
    `peak PSS of the client (each shared page counted once, not in every process that maps it): ${MiB(mem.peakPss)}`,
    `peak of the client's distinct memory (every resident page once, whoever else maps it: /proc/PID/pagemap): ${mem.peakDistinct === null ? '? (needs root)' : MiB(mem.peakDistinct)}`,
    `CPU time of the ${opt.cli ? '`lipsync sync` process' : 'daemon'}: ${mem.cpuMs === null ? '?' : `${(mem.cpuMs / 1000).toFixed(1)} s`}`,
    `highest of each command over the run: ${Object.entries(mem.maxBy)
      .map(([k, v]) => `${k} ${MiB(v)}`)
      .join(', ')}`,
  ];
  const tm = [...r.stderr.matchAll(/\[trace-mem\] (\d+) (.*)\n/g)];
  const near = tm.reduce(
    (b, m) => (!b || Math.abs(Number(m[1]) - mem.wall) < Math.abs(Number(b[1]) - mem.wall) ? m : b),
    null,
  );
  if (near)
    memLines.push(`the engine's account nearest the peak (${Number(near[1]) - mem.wall} ms off; MiB): ${near[2]}`);
  const heapMax = Math.max(0, ...tm.map((m) => Number(/heap [\d.]+\/([\d.]+)/.exec(m[2])?.[1] ?? 0)));
  if (tm.length) memLines.push(`V8 heap committed, highest over the run: ${heapMax.toFixed(1)} MiB`);
  if (opt.log) writeFileSync(opt.log, r.stderr);
  for (const l of memLines) log(l);
  for (const p of mem.parts)
    for (const x of p.each) log(`  at the peak: ${x.pid} ${MiB(x.rss)} (anon ${MiB(x.anon)}) ${x.cmd}`);
  const tr = r.stderr.split('\n').filter((l) => l.includes('[trace]'));
  const sum = (re) => tr.filter((l) => re.test(l)).reduce((a, l) => a + Number(/ ([\d.]+) ms$/.exec(l)?.[1] ?? 0), 0);
  const phases =
    `${tr.filter((l) => /rsync push \d+ new folders/.test(l)).length} folder rsync runs ` +
    `${(sum(/rsync push \d+ new folders/) / 1000).toFixed(1)} s, listing what arrived ${(sum(/list the staged/) / 1000).toFixed(1)} s, ` +
    `recording the base ${(sum(/record the new/) / 1000).toFixed(1)} s (the last two overlap the next run)`;
  log(`lipsync first sync: ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}; ${phases}`);
  await d?.stop();
  d = null;
  await discard(S);
  if (!opt['skip-after']) await peer('after');
  const lines = [
    `# First sync of ${N} files (row 5 alone)`,
    '',
    `Command: \`node bench/first-sync.mjs --files ${N}\`, ${new Date().toISOString()}.`,
    '',
    '| run | time | files/s | exit |',
    '|---|---|---|---|',
    ...rows.map(([k, ms, code]) => `| ${k} | ${(ms / 1000).toFixed(1)} s | ${Math.round(N / (ms / 1000))} | ${code} |`),
    '',
    `lipsync phases: ${phases}.`,
    '',
    ...memLines.map((l) => `- ${l}`),
    '',
  ];
  writeResult(lines, N, 'first-sync');
} finally {
  await oneRowTeardown(setup, d);
}
