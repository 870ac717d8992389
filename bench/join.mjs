#!/usr/bin/env node
// Row 5b alone: a second laptop joins an existing folder (issue 18 §2). Client A's first sync fills
// the server with the cached N-file tree (untimed); then client B's first sync (`lipsync sync`, with
// LIPSYNC_TRACE phase sums) into an empty folder is timed against `rsync -a` pulling the same server
// tree into another empty folder over the same ssh, interleaved (the order alternates per repetition:
// the disk's speed drifts), with the ratio per repetition. Then the variant where B already holds half
// of the top-level folders (copied from A, so identical), one file in ten of them changed (different:
// each must become a conflict copy, nothing overwritten): lipsync's time, conflict copies counted,
// against `rsync -a` into a folder prepared the same way.
// Usage: node bench/join.mjs [--files 100000] [--seed 1] [--reps 2] [--skip-half] [--skip-build] [--net …]
import { appendFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/harness.mjs';
import { makeEnv } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';
import { discard, median, sh, shOk } from './lib/util.mjs';

const opt = oneRowOptions({
  reps: { type: 'string', default: '2' },
  'skip-half': { type: 'boolean', default: false },
});
const REPS = Number(opt.reps);
const setup = await oneRowSetup(opt, 'join');
const { N, A, fast, host, rsh, work } = setup;
const cli = (env, args) => shOk(process.execPath, [join(ROOT, 'bin/lipsync.js'), ...args], { env });
const rm = discard; // not removed between timed runs: see discard()
const S = join(work, 's');

/** `rsync -a` of the server tree into `dest` (the server's .lipsync/ left out: lipsync's own state). */
async function rsyncPull(dest) {
  await shOk('sync', []);
  const r = await sh('rsync', ['-a', '--exclude=/.lipsync', '-e', rsh, `${host}:${S}/`, `${dest}/`]);
  if (r.code !== 0) throw new Error(`rsync pull failed (${r.code}): ${r.stderr.slice(-2000)}`);
  return r.ms;
}
/** lipsync's first sync of a new client into `dest`: its time and the phase sums from LIPSYNC_TRACE. */
async function lipsyncPull(dest, name) {
  const { env } = makeEnv(join(work, `env-${name}`), fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await cli(env, ['add', dest, `${host}:${S}`, '--id', 'b']);
  await shOk('sync', []);
  const r = await sh(join(ROOT, 'bin/lipsync'), ['sync'], { env });
  if (r.code !== 0) throw new Error(`lipsync sync failed (${r.code}): ${r.stderr.slice(-3000)}`);
  const tr = r.stderr.split('\n').filter((l) => l.includes('[trace]'));
  const sums = new Map();
  for (const l of tr) {
    const m = /\[trace\] (?:\d+ )?(.+) ([\d.]+) ms$/.exec(l);
    if (!m) continue;
    const k = m[1].replace(/\d+/g, 'N');
    sums.set(k, (sums.get(k) ?? 0) + Number(m[2]));
  }
  const phases = [...sums]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([k, ms]) => `${k} ${fmt(ms)}`)
    .join('; ');
  // A second sync right after: must find nothing to move.
  const again = await sh(join(ROOT, 'bin/lipsync'), ['sync', '--json'], { env });
  let next = `exit ${again.code}`;
  try {
    const x = JSON.parse(again.stdout).results[0];
    next = `received ${x.filesReceived}, sent ${x.filesSent}, conflicts ${x.conflicts}`;
  } catch {
    /* shown as its exit code */
  }
  return { ms: r.ms, phases, again: next };
}
/** Files under `dir` whose name says they are a conflict copy. */
function conflictCopies(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { recursive: true })) if (String(e).includes('(conflicted copy')) n++;
  return n;
}
/** Half the top-level folders of A copied into `dest` (cp -a: identical), one file in ten of them changed. */
async function halfFilled(dest) {
  mkdirSync(dest);
  const tops = readdirSync(A)
    .filter((t) => t !== '.lipsync')
    .sort()
    .filter((_, i) => i % 2 === 0);
  for (const t of tops) await shOk('cp', ['-a', join(A, t), join(dest, t)]);
  let changed = 0;
  for (const t of tops)
    for (const d of readdirSync(join(dest, t)))
      for (const f of readdirSync(join(dest, t, d)))
        if (Number(/\d+/.exec(f)?.[0]) % 10 === 3) {
          appendFileSync(join(dest, t, d, f), 'B was here\n');
          changed++;
        }
  return { tops: tops.length, changed };
}

const rows = [];
const notes = [];
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  mkdirSync(S);
  const { env: envA } = makeEnv(join(work, 'env-a'), fast.sshConfigFile);
  await cli(envA, ['add', A, `${host}:${S}`, '--id', 'a']);
  log(`client A fills the server (${N} files, untimed)…`);
  const a = await sh(join(ROOT, 'bin/lipsync'), ['sync'], { env: envA });
  if (a.code !== 0) throw new Error(`A's sync failed: ${a.stderr.slice(-2000)}`);
  log(`A's first sync: ${fmt(a.ms)}`);

  for (let i = 0; i < REPS; i++) {
    const R = join(work, `r${i}`),
      B = join(work, `b${i}`);
    mkdirSync(R);
    mkdirSync(B);
    let rs, lp;
    if (i % 2 === 0) {
      rs = await rsyncPull(R);
      lp = await lipsyncPull(B, `b${i}`);
    } else {
      lp = await lipsyncPull(B, `b${i}`);
      rs = await rsyncPull(R);
    }
    log(`rep ${i + 1}: rsync -a ${fmt(rs)}, lipsync B ${fmt(lp.ms)} (ratio rsync/lipsync ${(rs / lp.ms).toFixed(2)})`);
    log(`  lipsync phases: ${lp.phases}`);
    log(`  second sync: ${lp.again}`);
    rows.push({ kind: 'empty', rs, lp: lp.ms, phases: lp.phases, again: lp.again });
    await rm(R);
    await rm(B);
  }

  if (!opt['skip-half']) {
    const R = join(work, 'rh'),
      B = join(work, 'bh');
    const h = await halfFilled(B);
    await halfFilled(R);
    const lp = await lipsyncPull(B, 'bh');
    const rs = await rsyncPull(R);
    const copies = conflictCopies(B);
    log(
      `half: B held ${h.tops} top-level folders, ${h.changed} files changed; rsync -a ${fmt(rs)}, lipsync ${fmt(lp.ms)}; conflict copies ${copies}`,
    );
    log(`  lipsync phases: ${lp.phases}`);
    rows.push({ kind: 'half', rs, lp: lp.ms, phases: lp.phases, again: lp.again, copies, changed: h.changed });
    if (copies !== h.changed) notes.push(`conflict copies ${copies} ≠ files changed ${h.changed}`);
    await rm(R);
    await rm(B);
  }
  const empty = rows.filter((r) => r.kind === 'empty');
  const lines = [
    `# A second laptop joins (row 5b alone), ${N} files`,
    '',
    `Command: \`node bench/join.mjs --files ${N} --reps ${REPS}\`, ${new Date().toISOString()}. A's first sync (untimed): ${fmt(a.ms)}.`,
    '',
    '| run | B folder | rsync -a pull | lipsync B first sync | lipsync files/s | rsync/lipsync |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r, i) =>
        `| ${i + 1} | ${r.kind === 'empty' ? 'empty' : `half held, ${r.changed} differ → ${r.copies} conflict copies`} | ${fmt(r.rs)} | ${fmt(r.lp)} | ${Math.round(N / (r.lp / 1000))} | ${(r.rs / r.lp).toFixed(2)} |`,
    ),
    '',
    empty.length
      ? `Median over the empty-folder runs: rsync -a ${fmt(median(empty.map((r) => r.rs)))}, lipsync ${fmt(median(empty.map((r) => r.lp)))}, throughput ratio lipsync/rsync ${(median(empty.map((r) => r.rs / r.lp)) ?? 0).toFixed(2)}.`
      : '',
    '',
    ...rows.map((r, i) => `- run ${i + 1} phases (sums): ${r.phases}; second sync: \`${r.again}\``),
    ...notes.map((n) => `- note: ${n}`),
    '',
  ];
  writeResult(lines, N, 'join');
} finally {
  await oneRowTeardown(setup, null);
}
