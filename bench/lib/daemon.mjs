// The lipsync daemon as the benchmarks drive it: a client's own config/data dirs, `lipsync run`
// started as users start it (the sh launcher), and "up to date" read from `status` over its socket.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './harness.mjs';
import { waitUntil } from './util.mjs';
import Database from 'better-sqlite3';

/** The `lipsync` command as npm installs it: a sh launcher that execs node bin/lipsync.js. */
export const LAUNCHER = join(ROOT, 'bin', 'lipsync');
export const BIN = join(ROOT, 'bin', 'lipsync.js');

let ApiClient;
/** Loads the engine's API client from the out/ build (call once the build is done). */
export async function loadApiClient() {
  ({ ApiClient } = await import(join(ROOT, 'out/electron/engine/api/client.js')));
}

export function makeEnv(dir, sshConfigFile, extraEnv = {}) {
  const configDir = join(dir, 'config'),
    dataDir = join(dir, 'data');
  mkdirSync(configDir, { recursive: true });
  writeFileSync(join(configDir, 'config.json'), JSON.stringify({ version: 1, pairs: [], sshConfigFile }));
  return {
    dir,
    configDir,
    dataDir,
    env: { ...process.env, LIPSYNC_CONFIG_DIR: configDir, LIPSYNC_DATA_DIR: dataDir, ...extraEnv },
  };
}
/** Sets top-level settings in a client's config.json (read by the daemon at start). */
export function setSettings(e, patch) {
  const f = join(e.configDir, 'config.json');
  const s = JSON.parse(readFileSync(f, 'utf8'));
  writeFileSync(f, JSON.stringify({ ...s, ...patch }, null, 2));
}
/** Every daemon started, with its output (for the dump after a run). */
export const daemons = [];
export async function startDaemon(e) {
  const proc = spawn(LAUNCHER, ['run'], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const collect = (d) => {
    out += d;
    if (out.length > 2e6) out = out.slice(-1e6);
  };
  proc.stdout.on('data', collect);
  proc.stderr.on('data', collect);
  const exited = new Promise((r) => proc.on('close', r));
  await waitUntil(() => out.includes('running (pid') || proc.exitCode !== null, 600_000, 'daemon start', 10);
  if (proc.exitCode !== null) throw new Error(`daemon exited:\n${out}`);
  daemons.push({ name: e.dir, output: () => out });
  return {
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      await exited;
    },
  };
}
export async function status(e) {
  const c = await ApiClient.connect(e.dataDir);
  if (!c) return null;
  try {
    return await c.call('status', {});
  } finally {
    c.close();
  }
}
/** Until every pair is idle with nothing pending and a sync finished at or after `since`. */
export async function waitUpToDate(e, since, timeoutMs = 3_600_000, every = 50) {
  let last;
  await waitUntil(
    async () => {
      last = await status(e).catch(() => null);
      return (
        !!last &&
        last.pairs.length > 0 &&
        last.pairs.every((p) => p.state === 'idle' && p.pending === 0 && p.lastSyncAt !== null && p.lastSyncAt >= since)
      );
    },
    timeoutMs,
    'lipsync up to date',
    every,
  ).catch((err) => {
    throw new Error(`${err.message}\nlast status: ${JSON.stringify(last)?.slice(0, 2000)}`);
  });
  return last;
}
export function readLog(e) {
  const f = join(e.dataDir, 'log.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

/**
 * The daemon's LIPSYNC_TRACE phase lines in `output` ("[trace] END_MS LABEL DUR ms"), added to
 * `into` (label with digits as N → {start: ms after `t0`, dur: ms}), for phaseRows().
 */
export function collectPhases(output, t0, into) {
  for (const m of output.matchAll(/\[trace\] (\d+) (.+) ([\d.]+) ms\n/g)) {
    const [, end, label, dur] = m;
    const key = label.replace(/\d+/g, 'N');
    (into[key] ??= { start: [], dur: [] }).start.push(Number(end) - Number(dur) - t0);
    into[key].dur.push(Number(dur));
  }
  return into;
}
/** Markdown rows (phase | starts at | takes) of collectPhases' medians, in start order. */
export function phaseRows(phases, median, fmt) {
  return [
    '| phase | starts at | takes |',
    '|---|---|---|',
    ...Object.entries(phases)
      .sort((a, b) => median(a[1].start) - median(b[1].start))
      .map(([k, v]) => `| ${k} | ${fmt(median(v.start))} | ${fmt(median(v.dur))} |`),
  ];
}

/**
 * Waits until the pair has a crash checkpoint of this run (docs/sync-semantics.md, "Restart
 * after a crash"), read from its state database beside the running daemon.
 */
export async function waitCheckpoint(e, pairId, timeoutMs = 120_000) {
  const file = join(e.dataDir, 'state', `${pairId}.db`);
  const has = () => {
    if (!existsSync(file)) return false;
    const db = new Database(file, { readonly: true, fileMustExist: true });
    try {
      return !!db.prepare("SELECT value FROM meta WHERE key = 'checkpoint'").get()?.value;
    } finally {
      db.close();
    }
  };
  await waitUntil(has, timeoutMs, `a checkpoint of pair ${pairId}`, 50);
}
