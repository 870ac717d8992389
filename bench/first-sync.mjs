#!/usr/bin/env node
// Row 5 alone, for a tree too big for a full `npm run bench` in the time at hand: the first sync
// of the cached N-file tree (used in place as client A; its .lipsync/ is removed again) against
// plain `rsync -a` of the same tree over the same sshd, one rsync before lipsync and one after
// (the disk's speed drifts: compare lipsync with both). With LIPSYNC_TRACE phase sums.
// Usage: node bench/first-sync.mjs [--files 1000000] [--seed 1] [--skip-before]
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './lib/harness.mjs';
import { startBenchSshd } from './lib/sshvariant.mjs';
import { ensureTree } from './lib/tree.mjs';
import { sh, shOk } from './lib/util.mjs';

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    'skip-before': { type: 'boolean', default: false },
  },
});
const N = Number(opt.files);
const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
const tree = ensureTree(join(ROOT, 'bench/cache'), N, Number(opt.seed), log);
const A = tree.dir;
const { server, fast } = await startBenchSshd();
const work = mkdtempSync(join(tmpdir(), 'lipsync-first-'));
const rows = [];
const peer = async (label) => {
  const P = join(work, `peer-${label}`);
  mkdirSync(P);
  await shOk('sync', []);
  const r = await sh('rsync', ['-a', '-e', `ssh -F ${fast.sshConfigFile}`, `${A}/`, `${server.alias}:${P}/`]);
  log(`rsync -a (${label}): ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}`);
  rows.push([`rsync -a of the tree (${label})`, r.ms, r.code]);
  await sh('ionice', ['-c3', 'rm', '-rf', P]);
};
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  if (!opt['skip-before']) await peer('before');
  const S = join(work, 's');
  mkdirSync(S);
  const configDir = join(work, 'config');
  const dataDir = join(work, 'data');
  mkdirSync(configDir);
  writeFileSync(
    join(configDir, 'config.json'),
    JSON.stringify({ version: 1, pairs: [], sshConfigFile: fast.sshConfigFile }),
  );
  const env = { ...process.env, LIPSYNC_CONFIG_DIR: configDir, LIPSYNC_DATA_DIR: dataDir, LIPSYNC_TRACE: '1' };
  await shOk(process.execPath, [join(ROOT, 'bin/lipsync.js'), 'add', A, `${server.alias}:${S}`, '--id', 'p'], { env });
  await shOk('sync', []);
  const r = await sh(join(ROOT, 'bin/lipsync'), ['sync'], { env });
  rows.push(['lipsync first sync', r.ms, r.code]);
  const tr = r.stderr.split('\n').filter((l) => l.includes('[trace]'));
  const sum = (re) => tr.filter((l) => re.test(l)).reduce((a, l) => a + Number(/ ([\d.]+) ms$/.exec(l)?.[1] ?? 0), 0);
  const phases =
    `${tr.filter((l) => /rsync push \d+ new folders/.test(l)).length} folder rsync runs ` +
    `${(sum(/rsync push \d+ new folders/) / 1000).toFixed(1)} s, listing what arrived ${(sum(/list the staged/) / 1000).toFixed(1)} s, ` +
    `recording the base ${(sum(/record the new/) / 1000).toFixed(1)} s (the last two overlap the next run)`;
  log(`lipsync first sync: ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}; ${phases}`);
  await sh('ionice', ['-c3', 'rm', '-rf', S]);
  await peer('after');
  const table = [
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
  ].join('\n');
  console.log(table);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-${N}-first-sync.md`), table);
} finally {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  await fast.stop();
  await server.stop();
  await sh('ionice', ['-c3', 'rm', '-rf', work]);
}
