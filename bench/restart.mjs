#!/usr/bin/env node
// Row 4 alone, with where the time goes: lipsync's restart after a clean stop (daemon start until
// `status` says up to date) against one `rsync -a` no-op of the same tree, and the parts the
// restart is made of timed on their own (each side's watcher start, each side's listing of what
// changed since the stop), with the daemon's LIPSYNC_TRACE phase timings of each restart.
// The cached tree is used in place as client A (its .lipsync/ is removed again); the server copy
// is made by rsync and joined by one untimed first start (a compare of both sides).
// With --after kill (rows 4b and 4c): the daemon is killed (SIGKILL) instead of stopped, once it has
// taken its crash checkpoint, and then again with checkpoints off (LIPSYNC_CHECKPOINT_MS=0).
// Usage: node bench/restart.mjs [--files 100000] [--seed 1] [--reps 5] [--skip-build] [--net loopback|broadband|far]
//        [--after stop|kill]
import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/harness.mjs';
import { median, sh, shOk } from './lib/util.mjs';
import { BIN, collectPhases, makeEnv, phaseRows, startDaemon, waitCheckpoint, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, summary, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({ reps: { type: 'string', default: '5' }, after: { type: 'string', default: 'stop' } });
const REPS = Number(opt.reps);
if (!['stop', 'kill'].includes(opt.after)) throw new Error(`--after stop|kill, not ${opt.after}`);
const KILL = opt.after === 'kill';
const setup = await oneRowSetup(opt, 'restart');
const { N, A, fast, host, rsh, work } = setup;
const { walkwatchArgs } = await import(join(ROOT, 'out/electron/engine/watch/walkwatch.js'));
/** One argument for the server's shell (ssh joins its arguments into a command line). */
const q = (a) => `'${a.replace(/'/g, `'\\''`)}'`;

/**
 * Ends a process that was timed: EOF on its stdin (a command run over ssh, `serverCmd`, stops
 * its watcher then: killing ssh alone leaves it running on the server), SIGTERM after 2 s.
 */
function stopSoon(p) {
  p.stdin.end();
  const t = setTimeout(() => p.kill('SIGTERM'), 2000);
  p.on('close', () => clearTimeout(t));
}
/** A server command line that runs `cmd` until the session's stdin ends. */
const serverCmd = (cmd) => `${cmd} </dev/null & read _; kill $!`;

/**
 * ms from spawning `cmd args` until `ready` is seen on its `stream` ('stdout' or 'stderr'),
 * then it is stopped. Output is read as latin1, so a NUL-separated record matches too.
 */
function until(stream, cmd, args, ready) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let seen = '';
    p[stream === 'stdout' ? 'stderr' : 'stdout'].resume();
    p[stream].on('data', (d) => {
      seen = (seen + d.toString('latin1')).slice(-4096);
      if (seen.includes(ready)) {
        resolve(performance.now() - t0);
        stopSoon(p);
      }
    });
    p.on('close', (code) => reject(new Error(`${cmd} exited ${code} before "${ready}": ${seen.slice(-500)}`)));
  });
}
const untilStderr = (cmd, args, ready) => until('stderr', cmd, args, ready);
const untilStdout = (cmd, args, ready) => until('stdout', cmd, args, ready);
const parts = {};
const part = (k, ms) => (parts[k] ??= []).push(ms);

let d;
try {
  rmSync(join(A, '.lipsync'), { recursive: true, force: true });
  const S = join(work, 's');
  await shOk('rsync', ['-a', '-e', rsh, `${A}/`, `${host}:${S}/`]);
  const e = makeEnv(join(work, 'env'), fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  await shOk(process.execPath, [BIN, 'add', A, `${host}:${S}`, '--id', 'a'], { env: e.env });
  log('first start (compares both sides)…');
  d = await startDaemon(e);
  await waitUpToDate(e, 0, 3_600_000, 200);

  const traces = {};
  /** One restart after a clean stop, or after a kill -9 (once a checkpoint is taken, when `checkpoint`). */
  const restart = async (env, { checkpoint }) => {
    if (!KILL) await d.stop();
    else {
      if (checkpoint) await waitCheckpoint(e, 'a');
      const gone = new Promise((r) => d.proc.once('close', r));
      d.proc.kill('SIGKILL');
      await gone;
    }
    await shOk('sync', []); // no restart walks while earlier writes are written back (as in run.mjs)
    const t0 = Date.now();
    const p0 = performance.now();
    d = await startDaemon(env);
    await waitUpToDate(e, t0, 3_600_000, 20);
    const ms = performance.now() - p0;
    collectPhases(d.output(), t0, traces);
    return ms;
  };
  const xs = [];
  for (let i = 0; i < REPS; i++) {
    xs.push(await restart(e, { checkpoint: true }));
    log(`restart ${i + 1}${KILL ? ' after kill -9' : ''}: ${fmt(xs.at(-1))}`);
  }
  // After a kill with checkpoints off, the start compares everything.
  const ys = [];
  const noCheckpoint = { ...e, env: { ...e.env, LIPSYNC_CHECKPOINT_MS: '0' } };
  if (KILL) {
    // A daemon that takes none, started after a clean stop (whose record it clears).
    await d.stop();
    const t0 = Date.now();
    d = await startDaemon(noCheckpoint);
    await waitUpToDate(e, t0, 3_600_000, 20);
  }
  for (let i = 0; KILL && i < REPS; i++) {
    ys.push(await restart(noCheckpoint, { checkpoint: false }));
    log(`restart ${i + 1} after kill -9, checkpoints off: ${fmt(ys.at(-1))}`);
  }
  await d.stop();
  d = null;

  // The parts on their own, with nothing else running: each side's watcher start and listing.
  // As after a clean stop: a moment after the trees were made, 5 s back (the horizon the engine uses).
  const stamp = Math.floor(Date.now() / 1000) - 5;
  for (let i = 0; i < REPS; i++) {
    await shOk('sync', []);
    part('rsync -a no-op', (await shOk('rsync', ['-a', '-e', rsh, `${A}/`, `${host}:${S}/`])).ms);
    part(
      'here: inotifywait -r until watches established',
      await untilStderr('inotifywait', ['-m', '-r', '-e', 'close_write', A], 'Watches established'),
    );
    part('here: find -newerct (what changed since the stop)', (await shOk('find', [A, '-newerct', `@${stamp}`])).ms);
    // lipsync's watcher: one walk that puts the watches in place and lists what changed since.
    part(
      'here: walkwatch (perl) until READY: watches + what changed since, one walk',
      await untilStdout('perl', walkwatchArgs(A, { ms: stamp * 1000 }), 'READY\0'),
    );
    part(
      'server: inotifywait -r until watches established (over ssh)',
      await untilStderr(
        'ssh',
        ['-F', fast.sshConfigFile, host, serverCmd(`inotifywait -m -r -e close_write ${q(S)}`)],
        'Watches established',
      ),
    );
    part(
      'server: walkwatch (perl) until READY (over ssh)',
      await untilStdout(
        'ssh',
        [
          '-F',
          fast.sshConfigFile,
          host,
          serverCmd(walkwatchArgs(S, { ms: stamp * 1000 }).reduce((c, a) => `${c} ${q(a)}`, 'perl')),
        ],
        'READY\0',
      ),
    );
    part(
      'server: find -newerct (over ssh)',
      (await shOk('ssh', ['-F', fast.sshConfigFile, host, `find ${S} -newerct @${stamp}`])).ms,
    );
    part('ssh round trip, new connection', (await shOk('ssh', ['-F', fast.sshConfigFile, host, 'true'])).ms);
    part('node start (lipsync --help)', (await sh(process.execPath, [BIN, '--help'])).ms);
  }

  const lines = [
    KILL
      ? `# Restart after a kill -9, ${N} files (rows 4b and 4c alone)`
      : `# Restart after a clean stop, ${N} files (row 4 alone)`,
    '',
    `Command: \`node bench/restart.mjs --files ${N} --reps ${REPS}${KILL ? ' --after kill' : ''}\`, ${new Date().toISOString()}, load ${(await sh('cat', ['/proc/loadavg'])).stdout.trim()}.`,
    '',
    '| what | time |',
    '|---|---|',
    KILL
      ? `| lipsync restart after kill -9, from its checkpoint, until up to date | ${summary(xs)} |`
      : `| lipsync restart until up to date | ${summary(xs)} |`,
    ...(KILL ? [`| lipsync restart after kill -9, checkpoints off (compares everything) | ${summary(ys)} |`] : []),
    ...Object.entries(parts).map(([k, v]) => `| ${k} | ${summary(v)} |`),
    '',
    `lipsync/rsync no-op: ${(median(xs) / median(parts['rsync -a no-op'])).toFixed(2)}` +
      (KILL ? `; with checkpoints off: ${(median(ys) / median(parts['rsync -a no-op'])).toFixed(2)}` : ''),
    '',
    'Phases inside the restart (LIPSYNC_TRACE; ms from the daemon spawn, medians):',
    '',
    ...phaseRows(traces, median, fmt),
    '',
  ];
  writeResult(lines, N, KILL ? 'restart-kill' : 'restart');
} finally {
  await oneRowTeardown(setup, d);
}
