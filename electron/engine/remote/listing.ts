/**
 * What is on the server: its capabilities, the state of given paths, and
 * streaming listings of a folder — for both kinds of remote.
 *
 * ssh remotes (one remote command per call; every path shQuote()d inside a
 * POSIX sh script sent on stdin, see ssh.ts):
 *  - with GNU find (`-printf`): NUL-separated records, nanosecond mtimes, inodes,
 *    any file name (a name can't contain NUL);
 *  - without it: rsync's own `--list-only` listing (rsync is needed anyway).
 *    Whole-second mtimes, no inode. Names with control characters come
 *    escaped as `\#ooo` (undone by unescapeRsyncName); a symlink's line is
 *    `name -> target`, which is ambiguous when a name or target contains
 *    " -> ": the split whose target has the symlink's size (rsync prints a
 *    symlink's size as its target's length) wins. Times are printed in the
 *    client's local time zone, so the local rsync runs with TZ=UTC0. The
 *    server's rsync expands wildcards in a source path even with -s, so a
 *    root holding `*`, `?` or `[` is backslash-escaped (rsyncSourcePath); such
 *    a root that is missing or not a folder is then reported as missing.
 *    Prefer GNU find: it is exact.
 * local remotes (a mounted disk): node:fs (lstat with bigint, streaming opendir).
 *
 * Only files, folders and symlinks are reported: sockets, fifos and devices are
 * skipped in listings and are null in statRemote (sync never transfers them).
 * Names that are not valid UTF-8 are decoded with replacement characters.
 * `.lipsync/` at the root is never listed.
 */

import { lstat, mkdtemp, opendir, readlink, rm, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import type { BigIntStats } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as fsJoin, posix } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type {
  EntryKind,
  Excluder,
  RemoteCapabilities,
  RemoteEntry,
  RemoteSpec,
  RemoteStat,
  SshOptions,
} from '../types.js';
import { LipsyncError, classifyFailure, unescapeRsyncName, type FailureContext } from '../errors.js';
import { run, spawnChild, stopProcess, type RunResult } from '../proc/run.js';
import { REMOTE_SH, rsyncShellArg, shQuote, sshArgs, wrapScript } from './ssh.js';
import { normalizeRelPath } from './ops.js';
import { LineSplitter, NulFieldSplitter } from '../proc/split.js';
import { findInotifywait } from '../watch/watcher.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR, isMetaPath } from '../../../shared/layout.js';

export type SshRemote = Extract<RemoteSpec, { kind: 'ssh' }>;

/** Printed (NUL-terminated) by our scripts before a NUL stream, so login noise before it is skipped. */
export const STREAM_MARKER = 'LIPSYNC-STREAM';

/** Line prefix of our scripts' line output (login noise is ignored). */
const OUT = 'LIPSYNC:';

/** Script exit codes (below ssh's 255). */
export const EXIT_ROOT_MISSING = 3;
export const EXIT_ROOT_NOT_DIR = 4;
export const EXIT_NO_INOTIFYWAIT = 5;
export const EXIT_META_FAILED = 6;

/** find -printf format of a listing record: type, size, mtime, mode, inode, link target, path below the start. */
export const FIND_LIST_FORMAT = '%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0%P\\0';
/** find -printf format of a stat record: tag F, the path as given, then type, size, mtime, mode, inode, link target. */
export const FIND_STAT_FORMAT = 'F\\0%p\\0%y\\0%s\\0%T@\\0%m\\0%i\\0%l\\0';

const STDERR_TAIL = 16 * 1024;
const STAT_TIMEOUT_MS = 120_000;
/** Paths per find invocation (the shell rebuilds "$@" per path: keep it small) and per ssh call. */
const STAT_PATHS_PER_FIND = 5000;
const STAT_BYTES_PER_FIND = 64 * 1024;
const STAT_PATHS_PER_CALL = 20_000;
const STAT_BYTES_PER_CALL = 4 * 1024 * 1024;

// ---------------------------------------------------------------------------
// Paths

/** Checks and normalises an absolute root: starts with '/', no '.', '..', '//' or trailing slash. */
export function normalizeRoot(root: string): string {
  if (!root.startsWith('/') || root.includes('\0')) {
    throw new LipsyncError('invalid-remote', `The remote root ${JSON.stringify(root)} is not an absolute path.`);
  }
  const n = posix.normalize(root);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** A relative path ('' = the root) checked and normalised. */
function normalizeRel(rel: string): string {
  return rel === '' ? '' : normalizeRelPath(rel);
}

/** The absolute path of `rel` ('' = the root itself) under an absolute root. */
export function absPath(root: string, rel: string): string {
  if (rel === '') return root;
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

/** Escapes fnmatch() wildcards so a literal path can be used with `find -path`. */
export function globEscape(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

// ---------------------------------------------------------------------------
// Pure parsers: GNU find

/**
 * `%T@` (seconds since the epoch with a fraction, e.g. `1732541412.1234567890`)
 * as exact nanoseconds, without going through a float: the fraction is cut
 * (not rounded) to 9 digits. A leading '-' negates the whole value.
 */
export function parseFindTime(s: string): bigint {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(s.trim());
  if (!m) throw new Error(`unexpected time ${JSON.stringify(s)}`);
  const frac = (m[3] ?? '').slice(0, 9).padEnd(9, '0');
  const v = BigInt(m[2] as string) * 1_000_000_000n + BigInt(frac);
  return m[1] === '-' ? -v : v;
}

/** find's `%y` letter as an EntryKind; null for sockets, fifos, devices, unknown. */
export function findKind(y: string): EntryKind | null {
  return y === 'f' ? 'file' : y === 'd' ? 'dir' : y === 'l' ? 'symlink' : null;
}

/**
 * The six stat fields of a find record (`%y %s %T@ %m %i %l`) as a RemoteStat;
 * null for a type sync doesn't handle (socket, fifo, device).
 */
export function findFieldsToStat(f: readonly string[]): RemoteStat | null {
  if (f.length < 6) throw new Error('short find record');
  const kind = findKind(f[0] as string);
  if (kind === null) return null;
  const size = Number(f[1]);
  const mode = Number.parseInt(f[3] as string, 8);
  const inoText = f[4] as string;
  if (!Number.isFinite(size) || !Number.isFinite(mode) || !/^\d+$/.test(inoText)) {
    throw new Error(`unexpected find record ${JSON.stringify(f)}`);
  }
  return {
    kind,
    size,
    mtimeNs: parseFindTime(f[2] as string),
    mode: mode & 0o7777,
    ino: BigInt(inoText),
    target: kind === 'symlink' ? (f[5] as string) : null,
  };
}

/**
 * Parses listing records (FIND_LIST_FORMAT: 7 NUL-terminated fields, the last
 * `%P`, the path below the start point). `prefix` is the start point relative
 * to the root ('' for the root): entries come out root-relative. The start
 * point itself (empty `%P`) comes out as `prefix`. Sockets, fifos and devices
 * are dropped.
 */
export class FindListParser {
  private readonly splitter = new NulFieldSplitter();
  private fields: string[] = [];
  /** Entries whose own name is not valid UTF-8: their path as decoded and escaped (escapeName). */
  readonly badNames: { path: string; escaped: string; isDir: boolean }[] = [];

  /** `collectBadNames`: fill badNames (the caller takes them out as it goes). */
  constructor(
    private readonly prefix = '',
    private readonly collectBadNames = false,
  ) {}

  push(chunk: Buffer): RemoteEntry[] {
    const out: RemoteEntry[] = [];
    for (const raw of this.splitter.pushRaw(chunk)) {
      this.fields.push(raw.toString('utf8'));
      if (this.fields.length < 7) continue;
      const f = this.fields;
      this.fields = [];
      const stat = findFieldsToStat(f);
      if (stat === null) continue;
      const rel = f[6] as string;
      const path = rel === '' ? this.prefix : this.prefix === '' ? rel : `${this.prefix}/${rel}`;
      if (this.collectBadNames && ownNameNotUtf8(raw)) {
        this.badNames.push({ path, escaped: escapeName(joinRawPath(this.prefix, raw)), isDir: stat.kind === 'dir' });
      }
      out.push({ path, ...stat });
    }
    return out;
  }

  /** Whether a record was cut short (the stream ended inside it). */
  incomplete(): boolean {
    return this.fields.length > 0 || this.splitter.pendingBytes() > 0;
  }
}

/** `prefix/raw` (or raw alone), as bytes. */
function joinRawPath(prefix: string, raw: Buffer): Buffer {
  return prefix === '' ? raw : Buffer.concat([Buffer.from(`${prefix}/`), raw]);
}

/**
 * Whether the last component of a path's bytes is not valid UTF-8 while the folders
 * above it are: such an entry is reported once (what is below it is covered by it).
 */
export function ownNameNotUtf8(path: Buffer): boolean {
  if (isUtf8(path)) return false;
  const slash = path.lastIndexOf(0x2f);
  return slash < 0 || isUtf8(path.subarray(0, slash));
}

/**
 * A name's bytes made readable: valid UTF-8 as it is, each other byte (and each
 * control character) as `\xNN`. `caf\xe9.txt` is a Latin-1 `café.txt`.
 */
export function escapeName(bytes: Buffer): string {
  let out = '';
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i] as number;
    let n = 0;
    if (b >= 0x20 && b !== 0x7f) {
      // The shortest valid UTF-8 sequence starting here (1 to 4 bytes), if any.
      for (let len = 1; len <= 4 && i + len <= bytes.length; len++) {
        if (isUtf8(bytes.subarray(i, i + len))) {
          n = len;
          break;
        }
      }
    }
    if (n === 0) {
      out += `\\x${b.toString(16).padStart(2, '0')}`;
      i++;
    } else {
      out += bytes.toString('utf8', i, i + n);
      i += n;
    }
  }
  return out;
}

export type FindStatRecord =
  | { tag: 'F'; path: string; stat: RemoteStat | null }
  /** The path does not exist. */
  | { tag: 'M'; path: string }
  /** The path can't be looked at (a parent folder is not searchable). */
  | { tag: 'E'; path: string };

/**
 * Parses statRemote's tagged records: `F\0<path>\0` + the 6 stat fields
 * (FIND_STAT_FORMAT), `M\0<path>\0` (missing), `E\0<path>\0` (no access).
 */
export class FindStatParser {
  private readonly splitter = new NulFieldSplitter();
  private fields: string[] = [];

  push(chunk: Buffer): FindStatRecord[] {
    const out: FindStatRecord[] = [];
    for (const field of this.splitter.push(chunk)) {
      this.fields.push(field);
      const tag = this.fields[0];
      if (tag !== 'F' && tag !== 'M' && tag !== 'E')
        throw new Error(`unexpected stat record tag ${JSON.stringify(tag)}`);
      const need = tag === 'F' ? 8 : 2;
      if (this.fields.length < need) continue;
      const f = this.fields;
      this.fields = [];
      if (tag === 'F') out.push({ tag, path: f[1] as string, stat: findFieldsToStat(f.slice(2)) });
      else out.push({ tag, path: f[1] as string });
    }
    return out;
  }
}

/**
 * Drops everything before `STREAM_MARKER\0` (login noise: a chatty .bashrc,
 * a motd), then passes the stream through.
 */
export class StreamGate {
  private readonly marker = Buffer.from(`${STREAM_MARKER}\0`);
  private held: Buffer = Buffer.alloc(0);
  private open = false;

  push(chunk: Buffer): Buffer | null {
    if (this.open) return chunk;
    const data = this.held.length > 0 ? Buffer.concat([this.held, chunk]) : chunk;
    const at = data.indexOf(this.marker);
    if (at === -1) {
      // Keep just enough to find a marker cut in two.
      this.held = Buffer.from(data.subarray(Math.max(0, data.length - (this.marker.length - 1))));
      return null;
    }
    this.open = true;
    this.held = Buffer.alloc(0);
    const rest = data.subarray(at + this.marker.length);
    return rest.length > 0 ? rest : null;
  }

  get passed(): boolean {
    return this.open;
  }
}

// ---------------------------------------------------------------------------
// Pure parsers: rsync --list-only

export interface RsyncListEntry {
  /** The name as listed (unescaped), relative to the listed folder; '.' is the folder itself. */
  name: string;
  /** null for sockets, fifos and devices. */
  stat: RemoteStat | null;
}

const RSYNC_LINE =
  /^([-dlpscbD])([-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]) +([\d,.]+) (\d{4,})\/(\d\d)\/(\d\d) (\d\d):(\d\d):(\d\d)(?:\.\d+)? (.*)$/;

/** Permission bits of an `ls -l` style mode string's last nine characters (`rwsr-xr-t`...). */
export function parseModeString(perms: string): number {
  if (perms.length !== 9) throw new Error(`bad mode string ${perms}`);
  let mode = 0;
  const bit = (i: number, v: number) => (perms[i] !== '-' ? v : 0);
  mode |= bit(0, 0o400) | bit(1, 0o200) | bit(3, 0o040) | bit(4, 0o020) | bit(6, 0o004) | bit(7, 0o002);
  const x = (c: string | undefined, xbit: number, special: number, lower: string, upper: string): number =>
    c === 'x' ? xbit : c === lower ? xbit | special : c === upper ? special : 0;
  mode |= x(perms[2], 0o100, 0o4000, 's', 'S');
  mode |= x(perms[5], 0o010, 0o2000, 's', 'S');
  mode |= x(perms[8], 0o001, 0o1000, 't', 'T');
  return mode;
}

/**
 * One line of `rsync --list-only` output (rsync >= 3.0:
 * `-rw-r--r--      1,234,567 2024/11/25 13:30:12 name`, sizes with or
 * without thousands separators), with times printed in UTC (run rsync with
 * TZ=UTC0). Returns null for a line that is not a listing line.
 *
 * A symlink's line is `name -> target`; when the text holds several " -> ",
 * the split whose unescaped target is `size` bytes long (rsync's size for a
 * symlink) is taken, else the first; `isKnownName` (e.g. "is one of the names
 * asked for") takes precedence when given. Names and targets are unescaped (`\#ooo`).
 */
export function parseRsyncListLine(line: string, isKnownName?: (name: string) => boolean): RsyncListEntry | null {
  const m = RSYNC_LINE.exec(line.endsWith('\r') ? line.slice(0, -1) : line);
  if (!m) return null;
  const type = m[1] as string;
  const size = Number((m[3] as string).replace(/[,.]/g, ''));
  const ms = Date.UTC(Number(m[4]), Number(m[5]) - 1, Number(m[6]), Number(m[7]), Number(m[8]), Number(m[9]));
  if (!Number.isFinite(size) || !Number.isFinite(ms)) return null;
  const rest = m[10] as string;
  const kind: EntryKind | null = type === '-' ? 'file' : type === 'd' ? 'dir' : type === 'l' ? 'symlink' : null;
  let name = rest;
  let target: string | null = null;
  if (kind === 'symlink') {
    const splits: number[] = [];
    for (let i = rest.indexOf(' -> '); i !== -1; i = rest.indexOf(' -> ', i + 1)) splits.push(i);
    if (splits.length > 0) {
      const pick =
        (isKnownName && splits.find((i) => isKnownName(unescapeRsyncName(rest.slice(0, i))))) ??
        splits.find((i) => Buffer.byteLength(unescapeRsyncName(rest.slice(i + 4))) === size) ??
        (splits[0] as number);
      name = rest.slice(0, pick);
      target = unescapeRsyncName(rest.slice(pick + 4));
    } else {
      target = '';
    }
  }
  name = unescapeRsyncName(name);
  if (kind === null) return { name, stat: null };
  return {
    name,
    stat: {
      kind,
      size,
      mtimeNs: BigInt(ms) * 1_000_000n,
      mode: parseModeString(m[2] as string),
      ino: null,
      target,
    },
  };
}

/**
 * The bytes of the name in a `rsync --list-only` line (for a symlink, before its
 * first " -> "), its `\#ooo` escapes undone; null for another line. The line is
 * read as Latin-1, so every byte is one character and the ASCII columns match.
 */
export function rsyncListRawName(line: Buffer): Buffer | null {
  const m = RSYNC_LINE.exec(line.toString('latin1'));
  if (!m) return null;
  let rest = m[10] as string;
  if (m[1] === 'l' && rest.includes(' -> ')) rest = rest.slice(0, rest.indexOf(' -> '));
  rest = rest.replace(/\\#([0-7]{3})/g, (all, oct: string) => {
    const v = Number.parseInt(oct, 8);
    return v <= 0xff ? String.fromCharCode(v) : all;
  });
  return Buffer.from(rest, 'latin1');
}

// ---------------------------------------------------------------------------
// Running scripts

export function failureContext(remote: SshRemote, ssh: SshOptions, path?: string): FailureContext {
  const ctx: FailureContext = { host: remote.host, path: path ?? remote.path };
  if (remote.user !== undefined) ctx.user = remote.user;
  if (remote.port !== undefined) ctx.port = remote.port;
  if (ssh.identityFile !== undefined) ctx.identityFile = ssh.identityFile;
  return ctx;
}

/** The command that runs a POSIX script for this remote: ssh … /bin/sh -s, or /bin/sh -s here. */
export function scriptCommand(remote: RemoteSpec, ssh: SshOptions): [string, string[]] {
  return remote.kind === 'ssh' ? ['ssh', sshArgs(remote, ssh, REMOTE_SH)] : ['/bin/sh', ['-s']];
}

function where(remote: RemoteSpec): string {
  return remote.kind === 'ssh' ? ` on ${remote.host}` : '';
}

/** The error for a script run that failed (non-zero exit other than the ones the caller accepts). */
export function scriptFailure(remote: RemoteSpec, ssh: SshOptions, r: RunResult, path: string): LipsyncError {
  const detail = r.stderr.slice(-4000);
  if (r.timedOut) {
    return new LipsyncError(
      'host-unreachable',
      `${remote.kind === 'ssh' ? remote.host : 'The remote folder'} did not answer in time.`,
      { fix: 'Check the network connection to the server, then try again.', detail },
    );
  }
  if (r.code === EXIT_ROOT_MISSING) {
    return new LipsyncError('remote-missing', `The folder ${path} does not exist${where(remote)}.`, {
      fix: 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
      detail,
    });
  }
  if (r.code === EXIT_ROOT_NOT_DIR) {
    return new LipsyncError('remote-not-dir', `${path}${where(remote)} is not a folder.`, {
      fix: "Choose a folder as the pair's remote path.",
      detail,
    });
  }
  if (r.code === EXIT_NO_INOTIFYWAIT) {
    return new LipsyncError('unknown', `inotifywait is not installed${where(remote)}.`, {
      fix: 'Install inotify-tools on the server (e.g. `sudo apt install inotify-tools`), or let lipsync poll.',
      detail,
    });
  }
  if (r.code === EXIT_META_FAILED) {
    return new LipsyncError('permission-denied', `Could not write ${path}/${META_DIR}${where(remote)}.`, {
      fix: `Check that your user can write ${path}.`,
      detail,
    });
  }
  if (remote.kind === 'ssh') return classifyFailure('ssh', r.code, r.stderr, failureContext(remote, ssh, path));
  const how = r.code === null ? `was stopped (${r.signal ?? 'signal'})` : `failed (exit code ${r.code})`;
  return new LipsyncError('unknown', `A command on ${path} ${how}.`, detail ? { detail } : {});
}

function spawnFailure(cmd: string, e: unknown): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    if (cmd === 'ssh') {
      return new LipsyncError('unknown', 'The ssh program was not found on this computer.', {
        fix: 'Install OpenSSH (the ssh client), e.g. `sudo apt install openssh-client`.',
        cause: e,
      });
    }
    if (cmd === 'rsync') {
      return new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', {
        fix: 'Install rsync, e.g. `sudo apt install rsync`.',
        cause: e,
      });
    }
  }
  return new LipsyncError('unknown', `Could not start ${cmd}: ${(e as Error).message}`, { cause: e });
}

/**
 * Runs a script (wrapped by wrapScript) for the remote, stdout streamed to
 * `onStdout` (not kept). Rejects only when the command can't be started.
 */
export async function runScript(
  remote: RemoteSpec,
  ssh: SshOptions,
  script: string,
  opts: { onStdout?: (chunk: Buffer) => void; timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RunResult> {
  const [cmd, args] = scriptCommand(remote, ssh);
  const runOpts: Parameters<typeof run>[2] = {
    input: wrapScript(script),
    maxBuffer: opts.onStdout ? 64 * 1024 : 1024 * 1024,
  };
  if (opts.onStdout) runOpts.onStdout = opts.onStdout;
  if (opts.timeoutMs !== undefined) runOpts.timeoutMs = opts.timeoutMs;
  if (opts.signal !== undefined) runOpts.signal = opts.signal;
  try {
    return await run(cmd, args, runOpts);
  } catch (e) {
    throw spawnFailure(cmd, e);
  }
}

/** Sets R to the quoted root and checks it is a folder (exit 3 / 4 otherwise). */
export function requireRootScript(root: string): string {
  return `R=${shQuote(root)}
if [ ! -d "$R" ]; then
  if [ -e "$R" ] || [ -L "$R" ]; then echo "lipsync: not a directory: $R" >&2; exit ${EXIT_ROOT_NOT_DIR}; fi
  echo "lipsync: no such directory: $R" >&2; exit ${EXIT_ROOT_MISSING}
fi`;
}

/** The environment for a local rsync listing: times in UTC, messages in C, no inherited rsync settings. */
export function rsyncListEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C', TZ: 'UTC0' };
  delete env.RSYNC_OLD_ARGS;
  delete env.RSYNC_PROTECT_ARGS;
  delete env.RSYNC_RSH;
  return env;
}

/**
 * A remote SOURCE path for rsync -s: the server's rsync expands wildcards in
 * it (`[ab]` would list the folder `a`). When the path holds `*`, `?` or `[`,
 * every wildcard character and backslash is escaped with a backslash; a path
 * without them is taken literally (backslashes included), so it is left as is.
 */
export function rsyncSourcePath(p: string): string {
  return /[*?[]/.test(p) ? globEscape(p) : p;
}

/** `-e SSH` and `host:DIR/` for an rsync listing of an absolute remote folder. */
function rsyncSource(remote: SshRemote, ssh: SshOptions, dir: string): string[] {
  const host = remote.host.includes(':') ? `[${remote.host}]` : remote.host;
  return ['-e', rsyncShellArg(remote, ssh), `${host}:${rsyncSourcePath(dir === '/' ? '/' : `${dir}/`)}`];
}

// ---------------------------------------------------------------------------
// probeCapabilities

const PROBE_SCRIPT = `
if command -v inotifywait >/dev/null 2>&1; then printf '${OUT}inotifywait:1\\n'; else printf '${OUT}inotifywait:0\\n'; fi
f=$(find / -maxdepth 0 -printf '%y:%T@:%P' 2>/dev/null)
printf '${OUT}find:%s\\n' "$f"`;

/** Whether a `find / -maxdepth 0 -printf '%y:%T@:%P'` output shows a find with GNU -printf. */
function isGnuFindProbe(s: string): boolean {
  return /^d:-?\d+\.\d+:$/.test(s.trim());
}

/** What the server can do: inotifywait on its PATH, and a find with GNU `-printf`. */
export async function probeCapabilities(remote: RemoteSpec, ssh: SshOptions): Promise<RemoteCapabilities> {
  if (remote.kind === 'local') {
    const inotifywait = process.platform === 'linux' && findInotifywait() !== null;
    let gnuFind = false;
    try {
      const r = await run('find', ['/', '-maxdepth', '0', '-printf', '%y:%T@:%P'], { timeoutMs: 10_000 });
      gnuFind = r.code === 0 && isGnuFindProbe(r.stdout);
    } catch {
      gnuFind = false;
    }
    return { inotifywait, gnuFind };
  }
  const r = await runScript(remote, ssh, PROBE_SCRIPT, { timeoutMs: STAT_TIMEOUT_MS });
  if (r.code !== 0 || r.timedOut) throw scriptFailure(remote, ssh, r, remote.path);
  const lines = r.stdout
    .split('\n')
    .filter((l) => l.startsWith(OUT))
    .map((l) => l.slice(OUT.length));
  const value = (key: string) => lines.find((l) => l.startsWith(`${key}:`))?.slice(key.length + 1);
  const i = value('inotifywait');
  const f = value('find');
  if (i === undefined || f === undefined) {
    throw new LipsyncError('unknown', `Unexpected answer from ${remote.host} while probing it.`, {
      detail: r.stdout.slice(-2000),
    });
  }
  return { inotifywait: i.trim() === '1', gnuFind: isGnuFindProbe(f) };
}

// ---------------------------------------------------------------------------
// statRemote

function localKind(st: BigIntStats): EntryKind | null {
  return st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : null;
}

async function localStat(abs: string): Promise<RemoteStat | null> {
  let st: BigIntStats;
  try {
    st = await lstat(abs, { bigint: true });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw localFsError(e, abs);
  }
  return localStatOf(st, abs);
}

async function localStatOf(st: BigIntStats, abs: string): Promise<RemoteStat | null> {
  const kind = localKind(st);
  if (kind === null) return null;
  let target: string | null = null;
  if (kind === 'symlink') {
    try {
      target = await readlink(abs);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw localFsError(e, abs);
    }
  }
  return {
    kind,
    size: Number(st.size),
    mtimeNs: st.mtimeNs,
    mode: Number(st.mode & 0o7777n),
    ino: st.ino,
    target,
  };
}

function localFsError(e: unknown, path: string): LipsyncError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') {
    return new LipsyncError('permission-denied', `No permission to read ${path}.`, {
      fix: `Check that your user can read ${path}.`,
      files: [path],
      detail: (e as Error).message,
    });
  }
  return new LipsyncError('unknown', `Could not read ${path}: ${(e as Error).message}`, {
    detail: String(code ?? ''),
  });
}

/**
 * The statRemote shell function: one find prints the paths that exist; only when
 * some did not (find exits 1) is each of those told apart as missing (M) or
 * inaccessible (E: a parent cannot be searched). Linear in the number of paths;
 * any other failure of find (126/127: it could not run) fails the script, so an
 * existing path is never reported missing.
 */
const STAT_FUNCTION = `
lipsync_stat() {
  find "$@" -maxdepth 0 -printf '${FIND_STAT_FORMAT}' 2>/dev/null
  rc=$?
  [ "$rc" -eq 0 ] && return 0
  if [ "$rc" -ne 1 ]; then echo "lipsync: find failed with status $rc" >&2; exit 3; fi
  last=
  for p do
    if [ -e "$p" ] || [ -L "$p" ]; then continue; fi
    d=\${p%/*}
    if [ "$d" != "$last" ] || [ -z "$last" ]; then
      last=$d
      while :; do
        [ -z "$d" ] && d=/
        if [ -e "$d" ] || [ "$d" = / ]; then break; fi
        d=\${d%/*}
      done
      if [ -d "$d" ] && [ ! -x "$d" ]; then tag=E; else tag=M; fi
    fi
    printf '%s\\0%s\\0' "$tag" "$p"
  done
  return 0
}`;

function chunkBy<T>(items: T[], maxCount: number, maxBytes: number, size: (t: T) => number): T[][] {
  const out: T[][] = [];
  let cur: T[] = [];
  let bytes = 0;
  for (const it of items) {
    const n = size(it);
    if (cur.length > 0 && (cur.length >= maxCount || bytes + n > maxBytes)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(it);
    bytes += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The state of each path (relative to `root`, '' = the root), in the order
 * given; null when it does not exist (or is a socket, fifo or device), and null
 * when a folder above it inside the root is a symlink, a file or absent: a
 * symlink is never followed (N1, N5 of docs/sync-semantics.md), while find,
 * lstat and rsync's sender all follow a symlinked parent. The folders above
 * the paths are stat'ed in the same remote command (each once); their states
 * are put into `above` when given. One remote command per call (split in
 * several for huge lists; the rsync fallback needs a second one when the root
 * itself is asked for). Throws a LipsyncError 'permission-denied' (with
 * `files`) when a path can't be looked at, rather than calling it missing.
 */
export async function statRemote(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  paths: string[],
  caps: RemoteCapabilities,
  above?: Map<string, RemoteStat | null>,
): Promise<(RemoteStat | null)[]> {
  const r = normalizeRoot(root);
  const rels = paths.map(normalizeRel);
  if (rels.length === 0) return [];
  const asked = new Set(rels);
  const parents: string[] = [];
  const seen = new Set<string>();
  for (const rel of rels) {
    for (let i = rel.indexOf('/'); i !== -1; i = rel.indexOf('/', i + 1)) {
      const a = rel.slice(0, i);
      if (seen.has(a)) continue;
      seen.add(a);
      if (!asked.has(a)) parents.push(a);
    }
  }
  const all = parents.length ? [...rels, ...parents] : rels;
  let stats: (RemoteStat | null)[];
  if (remote.kind === 'local') {
    await requireLocalDir(r);
    stats = [];
    for (const rel of all) stats.push(await localStat(absPath(r, rel)));
  } else {
    stats = caps.gnuFind ? await statWithFind(remote, ssh, r, all) : await statNestedWithRsync(remote, ssh, r, all);
  }
  if (!seen.size) return stats;
  const kindOf = new Map<string, RemoteStat | null>();
  all.forEach((p, i) => kindOf.set(p, stats[i] ?? null));
  if (above) for (const a of seen) above.set(a, kindOf.get(a) ?? null);
  return rels.map((rel, i) => {
    for (let j = rel.indexOf('/'); j !== -1; j = rel.indexOf('/', j + 1)) {
      if (kindOf.get(rel.slice(0, j))?.kind !== 'dir') return null;
    }
    return stats[i] ?? null;
  });
}

async function statWithFind(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const results: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  const indexOf = new Map<string, number[]>();
  rels.forEach((rel, i) => {
    const abs = absPath(root, rel);
    const list = indexOf.get(abs);
    if (list) list.push(i);
    else indexOf.set(abs, [i]);
  });
  const unique = [...indexOf.keys()];
  const denied: string[] = [];
  const calls = chunkBy(unique, STAT_PATHS_PER_CALL, STAT_BYTES_PER_CALL, (p) => Buffer.byteLength(p) + 8);
  for (const call of calls) {
    const finds = chunkBy(call, STAT_PATHS_PER_FIND, STAT_BYTES_PER_FIND, (p) => Buffer.byteLength(p) + 8);
    const script = [
      requireRootScript(root),
      STAT_FUNCTION,
      `printf '${STREAM_MARKER}\\0'`,
      ...finds.map((f) => `lipsync_stat ${f.map(shQuote).join(' ')}`),
    ].join('\n');
    const gate = new StreamGate();
    const parser = new FindStatParser();
    let parseError: unknown = null;
    const res = await runScript(remote, ssh, script, {
      timeoutMs: STAT_TIMEOUT_MS,
      onStdout: (chunk) => {
        if (parseError !== null) return;
        const data = gate.push(chunk);
        if (data === null) return;
        try {
          for (const rec of parser.push(data)) {
            const idx = indexOf.get(rec.path);
            if (!idx) continue;
            if (rec.tag === 'F') for (const i of idx) results[i] = rec.stat;
            else if (rec.tag === 'E') denied.push(rec.path);
          }
        } catch (e) {
          parseError = e;
        }
      },
    });
    // find exits 1 when a path vanished between the test and find: that path is simply missing.
    const onlyVanished =
      res.code === 1 &&
      res.stderr
        .split('\n')
        .filter((l) => l.trim() !== '')
        .every((l) => /No such file or directory|Not a directory/.test(l));
    if ((res.code !== 0 && !onlyVanished) || res.timedOut) throw scriptFailure(remote, ssh, res, root);
    if (parseError !== null || !gate.passed) {
      throw new LipsyncError('unknown', `Unexpected answer from ${remote.host} while checking files.`, {
        detail: `${String(parseError ?? 'no output')}\n${res.stderr.slice(-2000)}`,
      });
    }
  }
  if (denied.length > 0) throw deniedError(remote, root, denied);
  return results;
}

/**
 * statWithRsync for a list that may hold a path and paths below it: rsync's listing
 * drops a listed symlink `a` when `a/b` is listed too (it follows `a` for `a/b` and
 * the two entries clash), which would report the link as absent. So a path found
 * missing while something below it was found is asked again without what is below
 * it (a second call, rarely a third: one per level of such links).
 */
async function statNestedWithRsync(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const out: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  let pending = rels.map((_, i) => i);
  while (pending.length) {
    const got = await statWithRsync(
      remote,
      ssh,
      root,
      pending.map((i) => rels[i]!),
    );
    const found = new Set<string>();
    pending.forEach((i, k) => {
      out[i] = got[k] ?? null;
      if (got[k]) found.add(rels[i]!);
    });
    const again = pending.filter((i) => {
      if (out[i]) return false;
      const prefix = `${rels[i]!}/`;
      for (const f of found) if (f.startsWith(prefix)) return true;
      return false;
    });
    if (again.length === pending.length) break; // no progress: they stay missing
    pending = again;
  }
  return out;
}

function deniedError(remote: SshRemote, root: string, absPaths: string[]): LipsyncError {
  const prefix = root === '/' ? '/' : `${root}/`;
  const files = absPaths.map((p) => (p.startsWith(prefix) ? p.slice(prefix.length) : p));
  return new LipsyncError(
    'permission-denied',
    `No permission to look at ${files.length === 1 ? 'one path' : `${files.length} paths`} on ${remote.host}.`,
    { fix: `Check that your user can read the folders holding them in ${root}.`, files },
  );
}

/** link_stat failures in rsync's stderr: name and reason. */
function rsyncLinkStatErrors(stderr: string): { name: string; reason: string }[] {
  const out: { name: string; reason: string }[] = [];
  for (const line of stderr.split('\n')) {
    const m = /link_stat "(.*)" failed: (.*?)(?: \(\d+\))?$/.exec(line.trimEnd());
    if (m) out.push({ name: unescapeRsyncName(m[1] as string), reason: m[2] as string });
  }
  return out;
}

async function statWithRsync(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  rels: string[],
): Promise<(RemoteStat | null)[]> {
  const results: (RemoteStat | null)[] = new Array<RemoteStat | null>(rels.length).fill(null);
  const indexOf = new Map<string, number[]>();
  rels.forEach((rel, i) => {
    const list = indexOf.get(rel);
    if (list) list.push(i);
    else indexOf.set(rel, [i]);
  });
  const ctx = failureContext(remote, ssh, root);
  const env = rsyncListEnv();

  // The root itself: listing '.' with --files-from would list its whole content.
  const rootIdx = indexOf.get('');
  if (rootIdx) {
    indexOf.delete('');
    const res = await runRsync(
      ['-s', '-l', '-d', '-8', '--list-only', '--exclude=*', ...rsyncSource(remote, ssh, root)],
      env,
    );
    if (res.code !== 0) {
      throw rsyncChangeDirError(remote, root, res.stderr) ?? classifyFailure('rsync', res.code, res.stderr, ctx);
    } else {
      for (const line of res.stdout.split('\n')) {
        const e = parseRsyncListLine(line);
        if (e && e.name === '.') for (const i of rootIdx) results[i] = e.stat;
      }
    }
  }
  if (indexOf.size === 0) return results;

  const tmp = await mkdtemp(fsJoin(tmpdir(), 'lipsync-list-'));
  try {
    const input = Buffer.from([...indexOf.keys()].map((rel) => `./${rel}\0`).join(''));
    const splitter = new LineSplitter();
    const onLine = (line: string) => {
      const e = parseRsyncListLine(line, (name) => indexOf.has(name));
      if (!e) return;
      const idx = indexOf.get(e.name);
      if (idx) for (const i of idx) results[i] = e.stat;
    };
    const res = await runRsync(
      [
        '-s',
        '-l',
        '-d',
        '-8',
        '--list-only',
        '--no-implied-dirs',
        '--files-from=-',
        '--from0',
        ...rsyncSource(remote, ssh, root),
        // --files-from needs a destination; --list-only never writes to it.
        fsJoin(tmp, 'unused') + '/',
      ],
      env,
      input,
      (chunk) => splitter.push(chunk).forEach(onLine),
    );
    splitter.end().forEach(onLine);
    if (res.code !== 0) {
      const errs = rsyncLinkStatErrors(res.stderr);
      const bad = errs.filter((e) => !/No such file or directory|Not a directory/.test(e.reason));
      const rootError = rsyncChangeDirError(remote, root, res.stderr);
      if (rootError) throw rootError;
      if (res.code !== 23 || errs.length === 0) throw classifyFailure('rsync', res.code, res.stderr, ctx);
      if (bad.length > 0) {
        throw deniedError(
          remote,
          root,
          bad.map((b) => b.name),
        );
      }
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return results;
}

/** rsync could not enter the listed folder (it is missing or not a folder): the matching error, else null. */
function rsyncChangeDirError(remote: SshRemote, abs: string, stderr: string): LipsyncError | null {
  const m = /change_dir "(.*)" failed: (No such file or directory|Not a directory)/.exec(stderr);
  if (!m) return null;
  const notDir = m[2] === 'Not a directory';
  return new LipsyncError(
    notDir ? 'remote-not-dir' : 'remote-missing',
    notDir ? `${abs} on ${remote.host} is not a folder.` : `The folder ${abs} does not exist on ${remote.host}.`,
    {
      fix: notDir
        ? "Choose a folder as the pair's remote path."
        : 'Check the remote folder in the pair settings (is the disk mounted?), or create it.',
      detail: stderr.slice(-4000),
    },
  );
}

async function runRsync(
  args: string[],
  env: NodeJS.ProcessEnv,
  input?: Buffer,
  onStdout?: (chunk: Buffer) => void,
): Promise<RunResult> {
  const opts: Parameters<typeof run>[2] = { env, timeoutMs: STAT_TIMEOUT_MS };
  if (input !== undefined) opts.input = input;
  if (onStdout) {
    opts.onStdout = onStdout;
    opts.maxBuffer = 64 * 1024;
  } else {
    opts.maxBuffer = 1024 * 1024;
  }
  try {
    return await run('rsync', args, opts);
  } catch (e) {
    throw spawnFailure('rsync', e);
  }
}

// ---------------------------------------------------------------------------
// listRemote

/**
 * Filters a streamed listing: `.lipsync` at the root, excluded paths, and
 * anything below an excluded folder (a folder is always listed before its
 * content, by find and by rsync).
 */
class EntryFilter {
  private readonly excludedDirs = new Set<string>();
  constructor(
    private readonly excluder?: Excluder,
    private readonly onBadName?: (path: string) => void,
  ) {}

  /** Reports (ListOptions.onBadName) a bad name of an accepted entry. */
  badName(path: string, escaped: string, isDir: boolean): void {
    if (this.onBadName && this.accept(path, isDir)) this.onBadName(escaped);
  }

  accept(path: string, isDir: boolean): boolean {
    if (path === '') return false;
    if (isMetaPath(path)) return false;
    if (!this.excluder) return true;
    if (this.excludedDirs.size > 0) {
      for (let i = path.indexOf('/'); i !== -1; i = path.indexOf('/', i + 1)) {
        if (this.excludedDirs.has(path.slice(0, i))) return false;
      }
    }
    if (this.excluder.ignores(path, isDir)) {
      if (isDir) this.excludedDirs.add(path);
      return false;
    }
    return true;
  }
}

/** A child whose stdout is read as a stream (with backpressure). */
interface StreamedChild {
  child: ChildProcess;
  stdout: AsyncIterable<Buffer>;
  /** Resolves when the child is gone, with its exit status and stderr's tail. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; spawnError: Error | null }>;
}

export function startStream(
  cmd: string,
  args: string[],
  input?: string | Buffer,
  env?: NodeJS.ProcessEnv,
): StreamedChild {
  const options: Parameters<typeof spawnChild>[2] = {
    stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  };
  if (env) options.env = env;
  const child = spawnChild(cmd, args, options);
  let stderr = '';
  let spawnError: Error | null = null;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (t: string) => {
    stderr = (stderr + t).slice(-STDERR_TAIL);
  });
  child.on('error', (e) => {
    if (child.pid === undefined) spawnError = e;
  });
  if (input !== undefined && child.stdin) {
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  }
  const done = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
    spawnError: Error | null;
  }>((resolve) => {
    child.once('close', (code, signal) => resolve({ code, signal, stderr, spawnError }));
  });
  return { child, stdout: child.stdout!, done };
}

/**
 * Lists what is below `start` (relative to `root`, '' = the root), streaming:
 * entries are yielded as the server sends them, nothing is buffered (a
 * million-file tree stays within a few MB). Recursive unless
 * `opts.recursive` is false. `.lipsync/` at the root is never listed;
 * `opts.excluder` drops excluded paths and everything below excluded folders.
 * Paths are root-relative. Order: a folder comes before its content.
 *
 * Throws a LipsyncError: before yielding anything when the start folder is
 * missing ('remote-missing') or not a folder ('remote-not-dir'), or the
 * server can't be reached; AFTER yielding what could be read when some
 * folders could not be read ('permission-denied': the listing is incomplete,
 * nothing may be called deleted). Breaking out of the loop stops the listing
 * command.
 */
export async function* listRemote(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  start: string,
  caps: RemoteCapabilities,
  opts: ListOptions = {},
): AsyncGenerator<RemoteEntry> {
  const r = normalizeRoot(root);
  const s = normalizeRel(start);
  const recursive = opts.recursive ?? true;
  if (s !== '' && isIgnoredPath(s, true, opts.excluder)) return;
  const filter = new EntryFilter(opts.excluder, opts.onBadName);
  if (remote.kind === 'local') {
    yield* listLocal(r, s, recursive, filter);
  } else if (caps.gnuFind) {
    yield* listWithFind(remote, ssh, r, s, recursive, filter);
  } else {
    yield* listWithRsync(remote, ssh, r, s, recursive, filter);
  }
}

export interface ListOptions {
  /** The whole subtree (default) or only the folder's own entries. */
  recursive?: boolean;
  excluder?: Excluder;
  /**
   * Told the path (root-relative, escaped by escapeName) of each listed entry whose
   * own name is not valid UTF-8 and not excluded. The entry is still listed, its name
   * decoded with replacement characters (U+FFFD), so it is never taken for deleted;
   * no path by that decoded name exists, so it is never transferred (N3).
   */
  onBadName?: (path: string) => void;
}

/** Throws 'remote-missing' / 'remote-not-dir' unless `abs` is a folder (symlinks followed when `follow`). */
async function requireLocalDir(abs: string, follow = true): Promise<void> {
  let st;
  try {
    st = follow ? await stat(abs) : await lstat(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new LipsyncError('remote-missing', `The folder ${abs} does not exist.`, {
        fix: 'Check the path (is the disk mounted?), or create the folder.',
      });
    }
    throw localFsError(e, abs);
  }
  if (!st.isDirectory()) {
    throw new LipsyncError('remote-not-dir', `${abs} is not a folder.`, {
      fix: "Choose a folder as the pair's remote path.",
    });
  }
}

async function* listLocal(
  root: string,
  start: string,
  recursive: boolean,
  filter: EntryFilter,
): AsyncGenerator<RemoteEntry> {
  const abs = absPath(root, start);
  await requireLocalDir(root);
  if (start !== '') await requireLocalDir(abs, false);
  const unreadable: string[] = [];
  yield* walkLocal(abs, start, recursive, filter, unreadable);
  if (unreadable.length > 0) {
    throw new LipsyncError(
      'permission-denied',
      `${unreadable.length === 1 ? 'One folder' : `${unreadable.length} folders`} in ${root} could not be read; the listing is incomplete.`,
      { fix: `Check that your user can read the folders listed in ${root}.`, files: unreadable.slice(0, 100) },
    );
  }
}

async function* walkLocal(
  absDir: string,
  relDir: string,
  recursive: boolean,
  filter: EntryFilter,
  unreadable: string[],
): AsyncGenerator<RemoteEntry> {
  let dir;
  try {
    // Names as bytes: one that is not valid UTF-8 is reported (ListOptions.onBadName).
    dir = await opendir(absDir, { encoding: 'buffer' as BufferEncoding });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return; // vanished meanwhile
    if (code === 'EACCES' || code === 'EPERM') {
      unreadable.push(relDir);
      return;
    }
    throw localFsError(e, absDir);
  }
  try {
    for await (const d of dir) {
      const nameBytes = d.name as unknown as Buffer;
      const name = nameBytes.toString('utf8');
      const rel = relDir === '' ? name : `${relDir}/${name}`;
      const abs = absDir === '/' ? `/${name}` : `${absDir}/${name}`;
      if (!isUtf8(nameBytes)) {
        // No path by the decoded name exists here (lstat would say so): reported, not listed.
        filter.badName(rel, escapeName(joinRawPath(relDir, nameBytes)), d.isDirectory());
        continue;
      }
      let st: BigIntStats;
      try {
        st = await lstat(abs, { bigint: true });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT' || code === 'ENOTDIR') continue;
        throw localFsError(e, abs);
      }
      const stat = await localStatOf(st, abs);
      if (stat === null) continue;
      if (!filter.accept(rel, stat.kind === 'dir')) continue;
      yield { path: rel, ...stat };
      if (recursive && stat.kind === 'dir') yield* walkLocal(abs, rel, recursive, filter, unreadable);
    }
  } finally {
    await dir.close().catch(() => undefined);
  }
}

function findListScript(root: string, start: string, recursive: boolean): string {
  const abs = absPath(root, start);
  const depth = recursive ? '' : ' -maxdepth 1';
  const check =
    start === ''
      ? ''
      : `S=${shQuote(abs)}
if [ -L "$S" ] || { [ -e "$S" ] && [ ! -d "$S" ]; }; then echo "lipsync: not a directory: $S" >&2; exit ${EXIT_ROOT_NOT_DIR}; fi
if [ ! -d "$S" ]; then echo "lipsync: no such directory: $S" >&2; exit ${EXIT_ROOT_MISSING}; fi`;
  const meta = shQuote(globEscape(absPath(root, META_DIR)));
  return [
    requireRootScript(root),
    check,
    `printf '${STREAM_MARKER}\\0'`,
    `exec find -H ${shQuote(abs)} -mindepth 1${depth} \\( -path ${meta} -prune \\) -o -printf '${FIND_LIST_FORMAT}'`,
  ].join('\n');
}

async function* listWithFind(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  start: string,
  recursive: boolean,
  filter: EntryFilter,
): AsyncGenerator<RemoteEntry> {
  const [cmd, args] = scriptCommand(remote, ssh);
  const stream = startStream(cmd, args, wrapScript(findListScript(root, start, recursive)));
  const gate = new StreamGate();
  const parser = new FindListParser(start, true);
  let finished = false;
  try {
    for await (const chunk of stream.stdout) {
      const data = gate.push(chunk);
      if (data === null) continue;
      for (const e of parser.push(data)) {
        if (filter.accept(e.path, e.kind === 'dir')) yield e;
      }
      for (const b of parser.badNames.splice(0)) filter.badName(b.path, b.escaped, b.isDir);
    }
    finished = true;
  } finally {
    if (!finished) await stopProcess(stream.child);
  }
  const res = await stream.done;
  if (res.spawnError) throw spawnFailure(cmd, res.spawnError);
  const where = absPath(root, start);
  if (res.code === 0 && gate.passed && !parser.incomplete()) return;
  const rr: RunResult = { code: res.code, signal: res.signal, stdout: '', stderr: res.stderr, timedOut: false };
  if (res.code === 1 && gate.passed) {
    // find lists what it can and exits 1 when some folders could not be read.
    const files = [...res.stderr.matchAll(/^find: [‘'](.*)[’']: (?:Permission denied|Operation not permitted)/gm)].map(
      (m) => m[1] as string,
    );
    throw new LipsyncError(
      'permission-denied',
      `Some folders in ${where} on ${remote.host} could not be read; the listing is incomplete.`,
      {
        fix: `Check that your user can read everything in ${where}.`,
        ...(files.length > 0 ? { files: files.slice(0, 100) } : {}),
        detail: res.stderr.slice(-4000),
      },
    );
  }
  if (res.code === 0) {
    throw new LipsyncError('unknown', `The listing of ${where} on ${remote.host} ended early.`, {
      detail: res.stderr.slice(-4000),
    });
  }
  throw scriptFailure(remote, ssh, rr, where);
}

async function* listWithRsync(
  remote: SshRemote,
  ssh: SshOptions,
  root: string,
  start: string,
  recursive: boolean,
  filter: EntryFilter,
): AsyncGenerator<RemoteEntry> {
  const abs = absPath(root, start);
  const args = ['-s', '-l', '-8', '--list-only', recursive ? '-r' : '-d'];
  if (start === '') args.push(`--exclude=/${META_DIR}`);
  args.push(...rsyncSource(remote, ssh, abs));
  const stream = startStream('rsync', args, undefined, rsyncListEnv());
  const splitter = new LineSplitter();
  let finished = false;
  const toEntry = (raw: Buffer): RemoteEntry | null => {
    const e = parseRsyncListLine(raw.toString('utf8'));
    if (!e || e.stat === null || e.name === '.') return null;
    const path = start === '' ? e.name : `${start}/${e.name}`;
    const isDir = e.stat.kind === 'dir';
    if (!isUtf8(raw)) {
      const name = rsyncListRawName(raw);
      if (name && ownNameNotUtf8(name)) filter.badName(path, escapeName(joinRawPath(start, name)), isDir);
    }
    return filter.accept(path, isDir) ? { path, ...e.stat } : null;
  };
  try {
    for await (const chunk of stream.stdout) {
      for (const line of splitter.pushRaw(chunk)) {
        const e = toEntry(line);
        if (e) yield e;
      }
    }
    for (const line of splitter.endRaw()) {
      const e = toEntry(line);
      if (e) yield e;
    }
    finished = true;
  } finally {
    if (!finished) await stopProcess(stream.child);
  }
  const res = await stream.done;
  if (res.spawnError) throw spawnFailure('rsync', res.spawnError);
  if (res.code === 0) return;
  const missing = rsyncChangeDirError(remote, abs, res.stderr);
  if (missing) throw missing;
  if (res.code === 23 && /opendir "(.*)" failed: Permission denied/.test(res.stderr)) {
    const files = [...res.stderr.matchAll(/opendir "(.*)" failed: Permission denied/g)].map((m) =>
      unescapeRsyncName(m[1] as string),
    );
    throw new LipsyncError(
      'permission-denied',
      `Some folders in ${abs} on ${remote.host} could not be read; the listing is incomplete.`,
      {
        fix: `Check that your user can read everything in ${abs}.`,
        files: files.slice(0, 100),
        detail: res.stderr.slice(-4000),
      },
    );
  }
  throw classifyFailure('rsync', res.code, res.stderr, failureContext(remote, ssh, abs));
}
