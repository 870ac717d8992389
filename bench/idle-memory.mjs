#!/usr/bin/env node
// Row 3 alone, with where the memory is: the idle daemon's RSS after its first sync of the tree
// (to an empty server folder) and again after a restart, per process, with the engine's own
// account of its memory after the heap release (LIPSYNC_TRACE: V8 heap used and committed,
// external), so what stays can be told apart: JavaScript objects or native memory.
// The cached tree is used in place as client A (its .lipsync/ is removed again).
// Usage: node bench/idle-memory.mjs [--files 100000] [--seed 1] [--tunables GLIBC_TUNABLES] [--skip-build]
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/harness.mjs';
import { startBenchSshd } from './lib/sshvariant.mjs';
import { ensureTree } from './lib/tree.mjs';
import { sh, shOk, treePids } from './lib/util.mjs';
import { BIN, loadApiClient, makeEnv, startDaemon, waitUpToDate } from './lib/daemon.mjs';

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    seed: { type: 'string', default: '1' },
    tunables: { type: 'string' },
    'skip-build': { type: 'boolean', default: false },
  },
});
const N = Number(opt.files);
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const mib = (kb) => `${(kb / 1024).toFixed(1)} MiB`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (!opt['skip-build']) await shOk(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', 'electron']);
await loadApiClient();
const tree = ensureTree(join(ROOT, 'bench/cache'), N, Number(opt.seed), log);
const A = tree.dir;
const { server, fast } = await startBenchSshd();
const work = mkdtempSync(join(tmpdir(), 'lipsync-idle-memory-'));

/** RSS (kB) of each process of the daemon's tree, 5 s after it is up to date. */
async function idle(d) {
  await sleep(5000);
  return treePids([d.proc.pid]).map((p) => {
    const status = readFileSync(`/proc/${p}/status`, 'utf8');
    return { name: /Name:\s+(\S+)/.exec(status)[1], kb: Number(/VmRSS:\s+(\d+)/.exec(status)[1]) };
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
  await shOk(process.execPath, [BIN, 'add', A, `${server.alias}:${S}`, '--id', 'a'], { env: e.env });
  for (const when of ['after the first sync', 'after a restart (clean stop)']) {
    const t0 = Date.now();
    d = await startDaemon(e);
    await waitUpToDate(e, t0, 3_600_000, 200);
    log(`${when}: up to date after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const procs = await idle(d);
    rows.push({ when, procs, memory: memoryLines(d) });
    await d.stop();
    d = null;
  }
  const lines = [
    `# Idle memory after the first sync and after a restart, ${N} files (row 3 alone)`,
    '',
    `Command: \`node bench/idle-memory.mjs --files ${N}${opt.tunables ? ` --tunables ${opt.tunables}` : ''}\`, ${new Date().toISOString()}.`,
    '',
    '| when | total | per process | the engine after its heap release (last) |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.when} | ${mib(r.procs.reduce((s, p) => s + p.kb, 0))} | ${r.procs.map((p) => `${p.name} ${mib(p.kb)}`).join(', ')} | ${r.memory.at(-1) ?? '(no release: the heap had little slack)'} |`,
    ),
    '',
  ];
  const table = lines.join('\n');
  console.log(table);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-${N}-idle-memory.md`), table);
} finally {
  await d?.stop();
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  await fast.stop();
  await server.stop();
  await sh('ionice', ['-c3', 'rm', '-rf', work]);
}
