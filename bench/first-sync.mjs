#!/usr/bin/env node
// Row 5 alone, for a tree too big for a full `npm run bench` in the time at hand: the first sync
// of the cached N-file tree (used in place as client A; its .lipsync/ is removed again) against
// plain `rsync -a` of the same tree over the same sshd, one rsync before lipsync and one after
// (the disk's speed drifts: compare lipsync with both). With LIPSYNC_TRACE phase sums.
// Usage: node bench/first-sync.mjs [--files 1000000] [--seed 1] [--skip-before] [--skip-build] [--net loopback|broadband|far]
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/harness.mjs';
import { makeEnv } from './lib/daemon.mjs';
import { log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';
import { sh, shOk } from './lib/util.mjs';

const opt = oneRowOptions({
  files: { type: 'string', default: '1000000' },
  'skip-before': { type: 'boolean', default: false },
});
const setup = await oneRowSetup(opt, 'first');
const { N, A, fast, host, rsh, work } = setup;
const rows = [];
const peer = async (label) => {
  const P = join(work, `peer-${label}`);
  mkdirSync(P);
  await shOk('sync', []);
  const r = await sh('rsync', ['-a', '-e', rsh, `${A}/`, `${host}:${P}/`]);
  log(`rsync -a (${label}): ${(r.ms / 1000).toFixed(1)} s, exit ${r.code}`);
  rows.push([`rsync -a of the tree (${label})`, r.ms, r.code]);
  await sh('ionice', ['-c3', 'rm', '-rf', P]);
};
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  if (!opt['skip-before']) await peer('before');
  const S = join(work, 's');
  mkdirSync(S);
  const { env } = makeEnv(work, fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await shOk(process.execPath, [join(ROOT, 'bin/lipsync.js'), 'add', A, `${host}:${S}`, '--id', 'p'], { env });
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
  ];
  writeResult(lines, N, 'first-sync');
} finally {
  await oneRowTeardown(setup, null);
}
