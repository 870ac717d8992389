/**
 * Helpers for integration tests that drive the real `lipsync` CLI and daemon
 * as separate processes (built output in out/), against real rsync, sshd and inotify.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  lstatSync,
  readlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LogRecord } from '../../shared/status.js';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const BIN = join(ROOT, 'bin', 'lipsync.js');

export function requireBuild(): void {
  if (!existsSync(join(ROOT, 'out', 'cli', 'lipsync.mjs'))) {
    throw new Error('out/ is missing: run `npm run build` (the test command does it) before the integration tests.');
  }
}

export interface CliEnv {
  dir: string;
  configDir: string;
  dataDir: string;
  env: NodeJS.ProcessEnv;
}

/** A fresh config and data dir; optionally with an ssh config file in the settings. */
export function makeCliEnv(
  opts: { sshConfigFile?: string; debounceMs?: number; extraEnv?: NodeJS.ProcessEnv } = {},
): CliEnv {
  const dir = mkdtempSync(join(tmpdir(), 'lipsync-it-'));
  const configDir = join(dir, 'config');
  const dataDir = join(dir, 'data');
  mkdirSync(configDir, { recursive: true });
  const settings: Record<string, unknown> = { version: 1, pairs: [] };
  if (opts.sshConfigFile) settings.sshConfigFile = opts.sshConfigFile;
  if (opts.debounceMs !== undefined) settings.debounceMs = opts.debounceMs;
  writeFileSync(join(configDir, 'config.json'), JSON.stringify(settings));
  const env = { ...process.env, LIPSYNC_CONFIG_DIR: configDir, LIPSYNC_DATA_DIR: dataDir, ...opts.extraEnv };
  return { dir, configDir, dataDir, env };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function cli(e: CliEnv, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: e.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lipsync ${args.join(' ')} timed out\nstdout: ${stdout}\nstderr: ${stderr}`));
    }, timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Daemon {
  proc: ChildProcess;
  output: () => string;
  /** Ctrl-C: SIGINT, wait for exit. */
  stop(): Promise<number | null>;
  kill9(): Promise<void>;
}

export interface DaemonOptions {
  /** More arguments after `lipsync run` (e.g. `--web --port N`). */
  args?: string[];
  /** The output that tells the daemon is up; `running (pid` by default. */
  readyText?: string;
}

export async function startDaemon(
  e: CliEnv,
  extraEnv: NodeJS.ProcessEnv = {},
  opts: DaemonOptions = {},
): Promise<Daemon> {
  const readyText = opts.readyText ?? 'running (pid';
  const proc = spawn(process.execPath, [BIN, 'run', ...(opts.args ?? [])], {
    env: { ...e.env, ...extraEnv },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => proc.on('close', (code) => r(code)));
  await waitFor(
    () => out.includes(readyText) || proc.exitCode !== null,
    20_000,
    () => `daemon did not start:\n${out}`,
  );
  if (proc.exitCode !== null) throw new Error(`daemon exited at start:\n${out}`);
  return {
    proc,
    output: () => out,
    async stop() {
      if (proc.exitCode === null) proc.kill('SIGINT');
      return exited;
    },
    async kill9() {
      if (proc.exitCode === null) proc.kill('SIGKILL');
      await exited;
    },
  };
}

export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 15_000,
  what: () => string = () => 'condition',
): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function readLogRecords(e: CliEnv): LogRecord[] {
  const f = join(e.dataDir, 'log.jsonl');
  if (!existsSync(f)) return [];
  return readFileSync(f, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as LogRecord);
}

/**
 * A map of every path below `root` (excluding `.lipsync/`) to a description
 * (type, content for files, link target, executable bit): equal trees give equal maps.
 */
export function treeSnapshot(root: string, skipMeta = true): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    const abs = rel ? join(root, rel) : root;
    for (const name of readdirSync(abs)) {
      if (skipMeta && rel === '' && name === '.lipsync') continue;
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(join(root, r));
      if (st.isSymbolicLink()) out.set(r, `link:${readlinkSync(join(root, r))}`);
      else if (st.isDirectory()) {
        out.set(r, 'dir');
        walk(r);
      } else out.set(r, `file:${st.mode & 0o111 ? 'x' : '-'}:${readFileSync(join(root, r)).toString('base64')}`);
    }
  };
  walk('');
  return out;
}

/** All files (relative paths) below `dir`, for looking into a trash. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  if (!existsSync(dir)) return out;
  const walk = (rel: string) => {
    for (const name of readdirSync(rel ? join(dir, rel) : dir)) {
      const r = rel ? `${rel}/${name}` : name;
      if (lstatSync(join(dir, r)).isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out;
}
