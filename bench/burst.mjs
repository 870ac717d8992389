#!/usr/bin/env node
// Row 6 alone, with where the time goes: 10,000 files written into one new folder of client A
// until all are on the server, against `rsync -a` of just that folder over the same ssh, with
// the writing time and the daemon's LIPSYNC_TRACE phases of each burst (from the first write).
// The cached tree is used in place as client A (its .lipsync/ and the burst folders are removed
// again); the server folder is filled by lipsync's own first sync, untimed.
// Usage: node bench/burst.mjs [--files 100000] [--seed 1] [--reps 5] [--skip-build] [--net loopback|broadband|far]
import { performance } from 'node:perf_hooks';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeFlat } from './lib/tree.mjs';
import { median, sh, shOk, sleep, waitUntil } from './lib/util.mjs';
import { BIN, collectPhases, makeEnv, phaseRows, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, summary, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({ reps: { type: 'string', default: '5' } });
const REPS = Number(opt.reps);
const BURST = 10_000;
const count = (dir) => {
  try {
    return readdirSync(dir).length;
  } catch {
    return -1;
  }
};

const setup = await oneRowSetup(opt, 'burst');
const { N, A, fast, host, rsh, work } = setup;
const names = [];

let d;
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  const S = join(work, 's'),
    S2 = join(work, 's2');
  mkdirSync(S);
  mkdirSync(S2);
  const e = makeEnv(join(work, 'env'), fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await shOk(process.execPath, [BIN, 'add', A, `${host}:${S}`, '--id', 'a'], { env: e.env });
  log('first sync (untimed)…');
  d = await startDaemon(e);
  await waitUpToDate(e, 0, 3_600_000, 200);
  // The first sync's writes are flushed first, so no burst pays for their writeback.
  await shOk('sync', []);

  const xs = [],
    wrote = [],
    peer = [];
  const phases = {};
  for (let i = 0; i < REPS; i++) {
    await waitUpToDate(e, 0);
    await sleep(1500);
    const name = `bench-burst-${i}`;
    names.push(name);
    const from = d.output().length;
    const t0 = Date.now();
    const p0 = performance.now();
    writeFlat(join(A, name), BURST, 1000 + i);
    wrote.push(performance.now() - p0);
    await waitUntil(() => count(join(S, name)) === BURST, 600_000, `${name} on the server`, 5);
    xs.push(performance.now() - p0);
    await waitUpToDate(e, t0);
    collectPhases(d.output().slice(from), t0, phases);
    peer.push((await shOk('rsync', ['-a', '-e', rsh, join(A, name), `${host}:${S2}/`])).ms);
    log(`burst ${i + 1}: ${fmt(xs.at(-1))} (writing ${fmt(wrote.at(-1))}); rsync ${fmt(peer.at(-1))}`);
  }

  const lines = [
    `# ${BURST} new files in one folder until on the server, ${N} files watched (row 6 alone)`,
    '',
    `Command: \`node bench/burst.mjs --files ${N} --reps ${REPS}\`, ${new Date().toISOString()}, load ${(await sh('cat', ['/proc/loadavg'])).stdout.trim()}.`,
    '',
    '| what | time |',
    '|---|---|',
    `| lipsync: from the first write until all ${BURST} are on the server | ${summary(xs)} |`,
    `| of that, writing the ${BURST} files | ${summary(wrote)} |`,
    `| rsync -a of just that folder | ${summary(peer)} |`,
    '',
    `lipsync/rsync: ${(median(xs) / median(peer)).toFixed(2)}`,
    '',
    'Phases of the sync (LIPSYNC_TRACE; ms from the first write, medians):',
    '',
    ...phaseRows(phases, median, fmt),
    '',
  ];
  writeResult(lines, N, 'burst');
} finally {
  await oneRowTeardown(setup, d, names);
}
