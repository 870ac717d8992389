/**
 * Helpers for the two-way acceptance tests: several clients (each its own
 * config dir, data dir, local root and daemon process) syncing with one
 * server directory through the real test sshd. The server runs on this
 * machine, so its directory is read and changed directly to play "someone
 * edited it on the server".
 */
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SshServer } from '../harness/sshd.js';
import {
  cli,
  listFiles,
  makeCliEnv,
  readLogRecords,
  startDaemon,
  treeSnapshot,
  waitFor,
  type CliEnv,
  type CliResult,
  type Daemon,
} from './cli.js';

export type Direction = 'two-way' | 'send-only' | 'receive-only';

export interface Client {
  /** Short name used in messages: 'a', 'b', … */
  name: string;
  /** deviceName in the settings: appears in conflict copy names. */
  device: string;
  e: CliEnv;
  /** The pair's local root. */
  local: string;
  /** The server directory (an absolute path on this machine, reached over ssh). */
  remote: string;
  pair: string;
  daemon: Daemon | null;
  /** Set by stop() when the daemon did not exit on SIGINT. */
  hangReport?: string;
}

/** A fresh, empty directory playing the server's folder. */
export function makeServerDir(): string {
  return mkdtempSync(join(tmpdir(), 'lipsync-srv-'));
}

/** Merge `patch` into the client's config.json (global fields), and `pairPatch` into every pair. */
export function patchConfig(e: CliEnv, patch: Record<string, unknown>, pairPatch?: Record<string, unknown>): void {
  const file = join(e.configDir, 'config.json');
  const cfg = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> & { pairs?: Record<string, unknown>[] };
  Object.assign(cfg, patch);
  if (pairPatch) for (const p of cfg.pairs ?? []) Object.assign(p, pairPatch);
  writeFileSync(file, JSON.stringify(cfg, null, 2));
}

/**
 * A client: config dir with the test sshd's ssh config, debounce 50 ms and
 * deviceName `laptop-<name>`, an empty local root. With `add` (default) the
 * pair `docs` is added with `--direction two-way` (or opts.direction).
 */
export async function makeClient(
  server: SshServer,
  remote: string,
  name: string,
  opts: { direction?: Direction; add?: boolean; pair?: string } = {},
): Promise<Client> {
  const e = makeCliEnv({ sshConfigFile: server.sshConfigFile, debounceMs: 50 });
  const device = `laptop-${name}`;
  patchConfig(e, { deviceName: device });
  const local = join(e.dir, 'local');
  mkdirSync(local);
  const c: Client = { name, device, e, local, remote, pair: opts.pair ?? 'docs', daemon: null };
  if (opts.add !== false) await addPair(server, c, opts.direction ?? 'two-way');
  return c;
}

/** `lipsync add LOCAL lipsync-test:REMOTE --direction DIR --id PAIR`; throws with the output on failure. */
export async function addPair(server: SshServer, c: Client, direction: Direction = 'two-way'): Promise<void> {
  const r = await cli(c.e, ['add', c.local, `${server.alias}:${c.remote}`, '--direction', direction, '--id', c.pair]);
  if (r.code !== 0) throw new Error(`${c.name}: lipsync add failed (${r.code}):\n${r.stdout}\n${r.stderr}`);
  // Written again in case the add rewrote the settings file without it.
  patchConfig(c.e, { deviceName: c.device, sshConfigFile: server.sshConfigFile, debounceMs: 50 });
}

export function describeResult(c: Client, args: string[], r: CliResult): string {
  return `${c.name}: lipsync ${args.join(' ')} → exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
}

/** `lipsync sync PAIR` (through the daemon when one runs). */
export function sync(c: Client, timeoutMs = 120_000): Promise<CliResult> {
  return cli(c.e, ['sync', c.pair], timeoutMs);
}

/** `lipsync sync PAIR`, which must exit 0. */
export async function syncOk(c: Client, context = ''): Promise<CliResult> {
  const r = await sync(c);
  if (r.code !== 0) throw new Error(`${context ? context + ': ' : ''}${describeResult(c, ['sync', c.pair], r)}`);
  return r;
}

export interface PairStatusJson {
  id: string;
  state: string;
  conflicts?: number;
  pending?: number;
  remoteWatcher?: string;
  reason?: { kind?: string; message?: string; fix?: string };
  [k: string]: unknown;
}

export interface StatusJson {
  daemon: boolean;
  pairs: PairStatusJson[];
}

export async function status(c: Client): Promise<StatusJson> {
  const r = await cli(c.e, ['status', '--json']);
  try {
    return JSON.parse(r.stdout) as StatusJson;
  } catch {
    throw new Error(`status --json did not print JSON: ${describeResult(c, ['status', '--json'], r)}`);
  }
}

export async function pairStatus(c: Client): Promise<PairStatusJson> {
  const st = await status(c);
  const p = st.pairs.find((x) => x.id === c.pair);
  if (!p) throw new Error(`${c.name}: no pair ${c.pair} in status: ${JSON.stringify(st)}`);
  return p;
}

/** Waits until the pair is idle with nothing pending. */
export async function waitIdle(c: Client, timeoutMs = 30_000): Promise<void> {
  let last: PairStatusJson | undefined;
  await waitFor(
    async () => {
      last = await pairStatus(c);
      return last.state === 'idle' && !last.pending;
    },
    timeoutMs,
    () => `${c.name} idle; last status ${JSON.stringify(last)}\n${c.daemon?.output() ?? ''}`,
  );
}

/** Waits until the server's changes are streamed to this client (status remoteWatcher 'inotify'). */
export async function waitStreaming(c: Client, timeoutMs = 20_000): Promise<void> {
  let last: PairStatusJson | undefined;
  await waitFor(
    async () => (last = await pairStatus(c)).remoteWatcher === 'inotify',
    timeoutMs,
    () => `${c.name} streaming the server's changes; last status ${JSON.stringify(last)}\n${c.daemon?.output() ?? ''}`,
  );
}

export async function start(c: Client): Promise<Daemon> {
  if (c.daemon && c.daemon.proc.exitCode === null) return c.daemon;
  c.daemon = await startDaemon(c.e);
  return c.daemon;
}

/** Command lines of the live child processes of `pid` (for reports about a hung daemon). */
export function childProcesses(pid: number): string[] {
  const out: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      out.push(`${entry}: ${readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 300)}`);
    } catch {
      // Ended while we looked.
    }
  }
  return out;
}

/**
 * SIGINT and wait; returns the exit code. A daemon still running `timeoutMs`
 * after SIGINT is killed (SIGKILL) and 'hung' is returned; `c.hangReport`
 * then says what it was still running.
 */
export async function stop(c: Client, timeoutMs = 20_000): Promise<number | null | 'hung'> {
  const d = c.daemon;
  c.daemon = null;
  if (!d) return 0;
  let timer: NodeJS.Timeout | undefined;
  const r = await Promise.race([
    d.stop(),
    new Promise<'hung'>((res) => (timer = setTimeout(() => res('hung'), timeoutMs))),
  ]);
  clearTimeout(timer);
  if (r === 'hung') {
    c.hangReport =
      `${c.name}: daemon pid ${d.proc.pid} still running ${timeoutMs} ms after SIGINT; its children:\n` +
      `${childProcesses(d.proc.pid!).join('\n') || '(none)'}\noutput (tail):\n${d.output().slice(-3000)}`;
    await d.kill9();
  }
  return r;
}

export async function kill9(c: Client): Promise<void> {
  const d = c.daemon;
  c.daemon = null;
  if (d) await d.kill9();
}

export interface ConflictJson {
  /** Unique across pairs: "PAIR-N". */
  id: string;
  pair: string;
  /** Its number within the pair. */
  seq: number;
  path: string;
  copyPath: string;
  local: { size: number; mtime: number; origin: string };
  remote: { size: number; mtime: number; origin: string };
  createdAt: number;
}

/** `lipsync conflicts --json` (open conflicts). */
export async function conflicts(c: Client): Promise<ConflictJson[]> {
  const args = ['conflicts', '--json'];
  const r = await cli(c.e, args);
  if (r.code !== 0) throw new Error(describeResult(c, args, r));
  try {
    return JSON.parse(r.stdout) as ConflictJson[];
  } catch {
    throw new Error(`conflicts --json did not print JSON: ${describeResult(c, args, r)}`);
  }
}

/**
 * Syncs the clients in turn (A, B, A, B, …) until two consecutive rounds
 * change nothing in any tree (the clients' and the server's) and every sync
 * succeeded. Throws after `maxRounds` rounds with the last outputs.
 */
export async function settle(
  clients: Client[],
  opts: { maxRounds?: number; context?: string; autoConfirm?: boolean } = {},
): Promise<{ rounds: number }> {
  const maxRounds = opts.maxRounds ?? 10;
  const fingerprint = () =>
    JSON.stringify([clients[0]!.remote, ...clients.map((c) => c.local)].map((d) => [...treeSnapshot(d)]));
  let quiet = 0;
  const outputs: string[] = [];
  for (let round = 1; round <= maxRounds; round++) {
    const before = fingerprint();
    let failed = false;
    for (const c of clients) {
      const r = await sync(c);
      outputs.push(describeResult(c, ['sync', c.pair], r));
      if (r.code !== 0) failed = true;
      // The user answers the mass-delete question (safety rule S2) with `lipsync confirm`.
      if (opts.autoConfirm && /lipsync confirm/.test(r.stdout + r.stderr)) {
        const cr = await cli(c.e, ['confirm', c.pair]);
        outputs.push(describeResult(c, ['confirm', c.pair], cr));
      }
    }
    const changed = fingerprint() !== before;
    quiet = !failed && !changed ? quiet + 1 : 0;
    if (quiet >= 2) return { rounds: round };
  }
  throw new Error(
    `${opts.context ? opts.context + ': ' : ''}trees did not settle after ${maxRounds} rounds of sync; last outputs:\n${outputs.slice(-2 * clients.length).join('\n')}`,
  );
}

/** Log records of a client since `since`, with the event as a plain string ('push', 'pull', 'rename', …). */
export function logSince(c: Client, since: number): { event: string; paths: string[]; from?: string; to?: string }[] {
  return readLogRecords(c.e)
    .filter((r) => r.t >= since)
    .map((r) => ({ event: String(r.event), paths: r.paths ?? [], from: r.from, to: r.to }));
}

/** Paths named by `event` records of a client since `since`. */
export function loggedPaths(c: Client, event: string, since: number): string[] {
  return logSince(c, since)
    .filter((r) => r.event === event)
    .flatMap((r) => r.paths);
}

export const trashDir = (root: string) => join(root, '.lipsync', 'trash');
export const trashFiles = (root: string) => listFiles(trashDir(root));

/** Contents of the files in `root`'s trash whose path ends with `rel`. */
export function trashContents(root: string, rel: string): string[] {
  return trashFiles(root)
    .filter((f) => f === rel || f.endsWith('/' + rel))
    .map((f) => readFileSync(join(trashDir(root), f), 'utf8'));
}

export const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** Files of a tree outside `.lipsync/` (relative paths). */
export function liveFiles(root: string): string[] {
  return listFiles(root).filter((f) => !f.startsWith('.lipsync/'));
}

/**
 * hash → where, for every regular file below each dir: the live tree
 * (outside `.lipsync/`) and the trash (`.lipsync/trash/`).
 */
export function hashAll(dirs: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  const add = (abs: string) => {
    const st = lstatSync(abs);
    if (!st.isFile()) return;
    const h = sha256(readFileSync(abs));
    const list = out.get(h) ?? [];
    list.push(abs);
    out.set(h, list);
  };
  for (const d of dirs) {
    if (!existsSync(d)) continue;
    for (const f of liveFiles(d)) add(join(d, f));
    for (const f of trashFiles(d)) add(join(trashDir(d), f));
  }
  return out;
}

/** Regex for a conflict copy name of `base` + `ext` made by `device`. */
export function conflictCopyRe(base: string, ext: string, device: string): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc(base)} \\(conflicted copy ${esc(device)} \\d{4}-\\d{2}-\\d{2} \\d{6}\\)${esc(ext)}$`);
}

/** Live ssh processes started for a client (their ControlPath lies in its data dir). */
export function sshProcessesOf(c: Client): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const exe = argv[0] ?? '';
      if (!(exe === 'ssh' || exe.endsWith('/ssh') || exe.startsWith('ssh:'))) continue;
      if (argv.some((a) => a.includes(c.e.dataDir))) out.push(Number(entry));
    } catch {
      // Ended while we looked.
    }
  }
  return out;
}

/** Drops a client's ssh connections (ControlMaster and sessions) with SIGKILL; returns how many died. */
export function dropConnections(c: Client): number {
  let n = 0;
  for (const pid of sshProcessesOf(c)) {
    try {
      process.kill(pid, 'SIGKILL');
      n++;
    } catch {
      // Already gone.
    }
  }
  return n;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A readable diff of two tree snapshots (first few differences). */
export function treeDiff(aName: string, a: Map<string, string>, bName: string, b: Map<string, string>): string {
  const lines: string[] = [];
  const short = (v: string | undefined) => (v === undefined ? 'absent' : v.length > 60 ? `${v.slice(0, 60)}…` : v);
  for (const k of new Set([...a.keys(), ...b.keys()])) {
    if (a.get(k) !== b.get(k))
      lines.push(`  ${JSON.stringify(k)}: ${aName}=${short(a.get(k))} ${bName}=${short(b.get(k))}`);
  }
  return lines.length
    ? lines.slice(0, 30).join('\n') + (lines.length > 30 ? `\n  … ${lines.length - 30} more` : '')
    : '';
}
