#!/usr/bin/env node
// Rows 1 and 2 alone, with the processes each change cost: one small file changed on client A until
// it is on the server (row 1) and until it is on client B (row 2, B follows the server's inotify
// stream), against the file sent by `rsync` over a fresh ssh connection (what lsyncd runs per event)
// through the same link. With --net, the times are also given in round trips of the measured link,
// and LIPSYNC_TRACE's child-process spans say which remote commands A's daemon ran per change and
// what each cost: the round trips a change spends, counted, not guessed.
// Usage: node bench/latency.mjs [--files 1000] [--reps 7] [--net loopback|broadband|far] [--skip-build]
import { performance } from 'node:perf_hooks';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { median, sh, shOk, sleep, waitUntil } from './lib/util.mjs';
import { BIN, makeEnv, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, summary, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({ files: { type: 'string', default: '1000' }, reps: { type: 'string', default: '7' } });
const REPS = Number(opt.reps);
const setup = await oneRowSetup(opt, 'latency');
const { N, A, host, rsh, work } = setup;
const rtt = setup.link?.rttMs;
const inRtt = (ms) => (rtt ? ` (${(ms / rtt).toFixed(1)} RTT)` : '');
const token = (path, tok) => {
  try {
    return readFileSync(path, 'utf8').startsWith(tok);
  } catch {
    return false;
  }
};
const PROBE_DIR = 'bench-latency';

let dA, dB;
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  rmSync(join(A, PROBE_DIR), { recursive: true, force: true });
  mkdirSync(join(A, PROBE_DIR));
  const S = join(work, 's'),
    S2 = join(work, 's2'),
    B = join(work, 'b');
  for (const d of [S, S2, B]) mkdirSync(d);
  mkdirSync(join(S2, PROBE_DIR));
  const eA = makeEnv(join(work, 'envA'), setup.fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  const eB = makeEnv(join(work, 'envB'), setup.fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await shOk(process.execPath, [BIN, 'add', A, `${host}:${S}`, '--id', 'a'], { env: eA.env });
  await shOk(process.execPath, [BIN, 'add', B, `${host}:${S}`, '--id', 'b'], { env: eB.env });
  log('first syncs (untimed)…');
  dA = await startDaemon(eA);
  await waitUpToDate(eA, 0, 3_600_000, 200);
  dB = await startDaemon(eB);
  await waitUpToDate(eB, 0, 3_600_000, 200);

  const toServer = [],
    toB = [],
    peer = [];
  /** Per change: the child processes A's daemon ran ([command (caller), start ms after the write, ms]), in order. */
  const children = [];
  /** The same for B's daemon (until the change is on B and B is up to date). */
  const childrenB = [];
  const spans = (out, wall0) =>
    [...out.matchAll(/\[trace\] (\d+) child (.+) ([\d.]+) ms\n/g)].map((m) => [
      m[2],
      Number(m[1]) - Number(m[3]) - wall0,
      Number(m[3]),
    ]);
  for (let i = 0; i < REPS; i++) {
    await waitUpToDate(eA, 0);
    await waitUpToDate(eB, 0);
    await sleep(1500);
    const rel = `${PROBE_DIR}/f${i}.txt`;
    const tok = `latency ${i} ${Date.now()}\n`;
    const from = dA.output().length,
      fromB = dB.output().length;
    const wall0 = Date.now();
    const t0 = performance.now();
    writeFileSync(join(A, rel), tok.padEnd(2048, '.'));
    await waitUntil(() => token(join(S, rel), tok), 60_000, `${rel} on the server`, 2);
    toServer.push(performance.now() - t0);
    await waitUntil(() => token(join(B, rel), tok), 60_000, `${rel} on B`, 2);
    toB.push(performance.now() - t0);
    await waitUpToDate(eA, 0);
    await waitUpToDate(eB, 0);
    children.push(spans(dA.output().slice(from), wall0));
    childrenB.push(spans(dB.output().slice(fromB), wall0));
    writeFileSync(join(work, 'peer.txt'), tok.padEnd(2048, '.'));
    peer.push((await shOk('rsync', ['-a', '-e', rsh, join(work, 'peer.txt'), `${host}:${join(S2, rel)}`])).ms);
    log(
      `change ${i + 1}: server ${fmt(toServer.at(-1))}, B ${fmt(toB.at(-1))}, fresh-ssh rsync ${fmt(peer.at(-1))}; ` +
        `A ran ${children.at(-1).length} processes`,
    );
  }

  // The processes of the median change (by time to the server), each with its time.
  const mid = toServer.indexOf([...toServer].sort((a, b) => a - b)[Math.floor(toServer.length / 2)]);
  const counts = children.map((c) => c.length);
  const lines = [
    `# One change, client A → server → client B, ${N} files watched (rows 1 and 2 alone)`,
    '',
    `Command: \`${process.env.LIPSYNC_SMALL_FILES === '0' ? 'LIPSYNC_SMALL_FILES=0 ' : ''}node bench/latency.mjs --files ${N} --reps ${REPS}${opt.net !== 'loopback' ? ` --net ${opt.net}` : ''}\`, ${new Date().toISOString()}, load ${(await sh('cat', ['/proc/loadavg'])).stdout.trim()}.`,
    '',
    '| what | time |',
    '|---|---|',
    `| 1. one change → server (lipsync) | ${summary(toServer)}${inRtt(median(toServer))} |`,
    `| rsync of the file over a fresh ssh (what lsyncd runs per event) | ${summary(peer)}${inRtt(median(peer))} |`,
    `| 2. one change on A → on B (lipsync, server inotify) | ${summary(toB)}${inRtt(median(toB))} |`,
    '',
    `lipsync/fresh-ssh rsync (row 1): ${(median(toServer) / median(peer)).toFixed(2)}. ` +
      `Processes A's daemon ran per change: ${Math.min(...counts)}–${Math.max(...counts)}.`,
    '',
    `Those of the median change (change ${mid + 1}), in order (LIPSYNC_TRACE child spans):`,
    '',
    '| process (asked by) | starts at | took |',
    '|---|---|---|',
    ...children[mid].map(([what, at, ms]) => `| ${what} | ${fmt(at)} | ${fmt(ms)}${inRtt(ms)} |`),
    '',
    `B's, for the same change (ms from the write on A):`,
    '',
    '| process (asked by) | starts at | took |',
    '|---|---|---|',
    ...childrenB[mid].map(([what, at, ms]) => `| ${what} | ${fmt(at)} | ${fmt(ms)}${inRtt(ms)} |`),
    '',
  ];
  writeResult(lines, N, 'latency');
} finally {
  await dB?.stop();
  await oneRowTeardown(setup, dA, [PROBE_DIR]);
}
