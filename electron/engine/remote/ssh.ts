/**
 * ssh command lines.
 *
 * Safety rules:
 * - Host key checking is never weakened: no StrictHostKeyChecking=no, no
 *   UserKnownHostsFile=/dev/null. BatchMode=yes makes ssh fail instead of prompting.
 * - The host comes after `--`, and parseRemote() refuses hosts starting with '-'.
 * - Remote commands: the server's LOGIN SHELL parses the command line ssh
 *   sends (it may be bash, zsh, fish, csh...), so that line is always the fixed
 *   constant `/bin/sh -s`. The real work is a POSIX sh script sent on stdin, run
 *   by /bin/sh; every path inside it is quoted with shQuote(). Hence sshExec()
 *   has no separate stdin for data: embed data in the script with shQuote().
 */

import { lstatSync, mkdirSync, mkdtempSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { SshOptions } from '../types.js';
import { run, type RunResult } from '../proc/run.js';

export interface SshTarget {
  user?: string;
  host: string;
  port?: number;
}

export const DEFAULT_CONNECT_TIMEOUT_SEC = 10;
export const CONTROL_PERSIST_SEC = 60;

/**
 * Longest Unix socket path we produce, in bytes: macOS allows 103 (104 with
 * the NUL), Linux 107. ssh binds `<ControlPath>.<16 random chars>` first and
 * renames it, and %C expands to 40 hex chars.
 */
const MAX_SOCKET_PATH = 103;
const SOCKET_SUFFIX_BYTES = 1 + 40 + 17; // "/" + %C + ".XXXXXXXXXXXXXXXX"

/**
 * POSIX sh single-quote quoting: safe for any string, newlines and all.
 * `it's` becomes `'it'\''s'`.
 */
export function shQuote(s: string): string {
  if (s !== '' && /^[A-Za-z0-9_@%+:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * Quoting for rsync's `-e` value. rsync splits that string on spaces and
 * honours single and double quotes (no backslash escapes), then runs it
 * without a shell. Inside '...' everything but ' is literal, so a ' is
 * written as '"'"'.
 */
export function rsyncQuote(s: string): string {
  if (s !== '' && !/[ '"]/.test(s)) return s;
  return `'${s.replace(/'/g, `'"'"'`)}'`;
}

const controlDirCache = new Map<string, string>();

function isSafeDir(dir: string): boolean {
  try {
    const st = lstatSync(dir);
    if (!st.isDirectory()) return false;
    const uid = process.getuid?.();
    if (uid !== undefined && st.uid !== uid) return false;
    if ((st.mode & 0o077) !== 0) chmodSync(dir, 0o700);
    return true;
  } catch {
    return false;
  }
}

function fits(dir: string): boolean {
  // ssh parses ControlPath itself: we quote spaces, double '%'; '"' and '\' and control chars are refused.
  const badChar = [...dir].some((c) => c === '"' || c === '\\' || c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  return Buffer.byteLength(dir) + SOCKET_SUFFIX_BYTES <= MAX_SOCKET_PATH && !badChar;
}

/**
 * The directory for ControlMaster sockets: `controlDir` when its socket paths
 * stay short enough, else a private (0700, ours) directory under os.tmpdir()
 * or /tmp. Created when missing.
 */
export function controlSocketDir(controlDir: string): string {
  const cached = controlDirCache.get(controlDir);
  if (cached !== undefined) return cached;
  const abs = resolve(controlDir);
  let chosen: string | undefined;
  if (fits(abs)) {
    try {
      mkdirSync(abs, { recursive: true, mode: 0o700 });
      if (isSafeDir(abs)) chosen = abs;
    } catch {
      // Fall back below.
    }
  }
  if (chosen === undefined) {
    const name = `lipsync-ssh-${process.getuid?.() ?? 'u'}`;
    for (const base of [tmpdir(), '/tmp']) {
      const dir = join(base, name);
      if (!fits(dir)) continue;
      try {
        mkdirSync(dir, { mode: 0o700 });
      } catch {
        // Exists (checked below) or cannot be created.
      }
      if (isSafeDir(dir)) {
        chosen = dir;
        break;
      }
    }
  }
  // Someone else owns the shared name: a fresh private dir for this process.
  chosen ??= mkdtempSync('/tmp/lipsync-ssh-');
  controlDirCache.set(controlDir, chosen);
  return chosen;
}

/** ssh config value quoting: double quotes around a value with spaces; '%' doubled (ssh expands %-tokens). */
function sshConfigPathValue(p: string, percentTokens: boolean): string {
  const v = percentTokens ? p.replace(/%/g, '%%') : p;
  return /\s/.test(v) ? `"${v}"` : v;
}

/** Everything before `--`: the options. */
export function sshOptionArgs(remote: SshTarget, o: SshOptions): string[] {
  const args: string[] = [];
  if (o.configFile) args.push('-F', resolve(o.configFile));
  const dir = controlSocketDir(o.controlDir);
  args.push(
    '-o',
    'BatchMode=yes',
    '-o',
    'ControlMaster=auto',
    '-o',
    `ControlPath=${sshConfigPathValue(dir, true)}/%C`,
    '-o',
    `ControlPersist=${CONTROL_PERSIST_SEC}`,
    '-o',
    `ConnectTimeout=${Math.max(1, Math.round(o.connectTimeoutSec ?? DEFAULT_CONNECT_TIMEOUT_SEC))}`,
    '-o',
    'ServerAliveInterval=15',
    '-o',
    'ServerAliveCountMax=3',
  );
  if (o.identityFile) {
    const key = resolve(o.identityFile);
    // ssh expands %-tokens in identity file names, but checks `-i FILE` exists
    // before expanding: a name with '%' goes through -o IdentityFile with '%%'.
    if (key.includes('%')) args.push('-o', `IdentityFile=${sshConfigPathValue(key, true)}`);
    else args.push('-i', key);
    args.push('-o', 'IdentitiesOnly=yes');
  }
  if (remote.port !== undefined) args.push('-p', String(remote.port));
  if (remote.user !== undefined) args.push('-l', remote.user);
  return args;
}

/**
 * The full ssh argument list: options, `--`, the host, then `command` (words of
 * the remote command line, which the remote login shell will parse: pass only
 * constants or shQuote()d strings).
 */
export function sshArgs(remote: SshTarget, o: SshOptions, command: string[] = []): string[] {
  if (remote.host.startsWith('-') || remote.host === '')
    throw new Error(`refusing ssh host ${JSON.stringify(remote.host)}`);
  return [...sshOptionArgs(remote, o), '--', remote.host, ...command];
}

/**
 * The `-e` value for rsync: `ssh` and the options (user and port included).
 * rsync appends the host itself (from `host:path`, without a user) and its
 * server command.
 */
export function rsyncShellArg(remote: SshTarget, o: SshOptions): string {
  return ['ssh', ...sshOptionArgs(remote, o)].map(rsyncQuote).join(' ');
}

/** The constant remote command line: the server's login shell only ever parses this. */
export const REMOTE_SH = ['/bin/sh', '-s'];

/**
 * Wraps a script so /bin/sh parses all of it before running any of it (a
 * truncated script runs nothing), commands cannot swallow the rest of the
 * script from stdin, and messages are in the C locale (stable for the error table).
 */
export function wrapScript(script: string): string {
  return `{\nLC_ALL=C; export LC_ALL; unset CDPATH\n${script}\n} </dev/null\n`;
}

/**
 * Runs a POSIX sh script on the server: `ssh ... -- host /bin/sh -s`, the
 * script on stdin (see the module comment). Exit code 255 means ssh failed;
 * scripts should use codes below 255. Never rejects for a non-zero exit.
 */
export async function sshExec(
  remote: SshTarget,
  o: SshOptions,
  script: string,
  opts: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<RunResult> {
  const runOpts: Parameters<typeof run>[2] = { input: wrapScript(script) };
  if (opts.timeoutMs !== undefined) runOpts.timeoutMs = opts.timeoutMs;
  if (opts.signal !== undefined) runOpts.signal = opts.signal;
  return run('ssh', sshArgs(remote, o, REMOTE_SH), runOpts);
}

/** Ends the shared ControlMaster connection to this remote, if one is running (`ssh -O exit`). */
export async function closeMaster(remote: SshTarget, o: SshOptions): Promise<void> {
  try {
    await run('ssh', [...sshOptionArgs(remote, o), '-O', 'exit', '--', remote.host], { timeoutMs: 10_000 });
  } catch {
    // No ssh at all: nothing to close.
  }
}
