/**
 * The remote-script layer: every operation on a remote root that is not an rsync
 * transfer is a POSIX sh script run through here (ssh remotes: `ssh … /bin/sh -s`
 * with the script on stdin, see ssh.ts; local remotes: `/bin/sh -s`). This module
 * owns what the scripts share:
 *  - running one (runScript, or startStream for a streamed output) and turning a
 *    failed run into a LipsyncError (scriptFailure, through errors.ts);
 *  - their exit codes (EXIT_*, below ssh's 255), each named as a ScriptCondition
 *    for errors.ts;
 *  - their output framing: `LIPSYNC:`-prefixed lines (outLines) and a NUL stream
 *    opened by STREAM_MARKER (StreamGate), so login noise (a chatty .bashrc, a
 *    motd) is never read as an answer;
 *  - the root check (requireRootScript / ROOT_CHECK: exit 3 missing, 4 not a folder);
 *  - the failure context (who and where) for the error table.
 */

import type { ChildProcess } from 'node:child_process';
import type { RemoteSpec, SshOptions } from '../types.js';
import {
  classifyScriptFailure,
  spawnFailure,
  type FailureContext,
  type LipsyncError,
  type ScriptCondition,
} from '../errors.js';
import { run, spawnChild, type RunResult } from '../proc/run.js';
import { REMOTE_SH, shQuote, sshArgs, wrapScript } from './ssh.js';
import { sessionFor } from './session.js';
import { INCOMING_DIR, META_DIR, PARTIAL_DIR, TRASH_DIR } from '../../../shared/layout.js';

export type SshRemote = Extract<RemoteSpec, { kind: 'ssh' }>;

/** Script exit codes (below ssh's 255). */
export const EXIT_ROOT_MISSING = 3;
export const EXIT_ROOT_NOT_DIR = 4;
export const EXIT_NO_INOTIFYWAIT = 5;
export const EXIT_META_FAILED = 6;
/** A folder of ROOT/.lipsync (or a trash day) is a symlink or a file: see ops-ssh.ts META_CHECK. */
export const EXIT_META_NOT_DIR = 7;

/** What an exit code of our scripts means (errors.ts words it); null for another code. */
export function scriptCondition(code: number | null): ScriptCondition | null {
  switch (code) {
    case EXIT_ROOT_MISSING:
      return 'root-missing';
    case EXIT_ROOT_NOT_DIR:
      return 'root-not-dir';
    case EXIT_NO_INOTIFYWAIT:
      return 'no-inotifywait';
    case EXIT_META_FAILED:
      return 'meta-failed';
    case EXIT_META_NOT_DIR:
      return 'meta-not-dir';
    default:
      return null;
  }
}

// ---------------------------------------------------------------------------
// Output framing

/** Lines our scripts print start with this, so a chatty login (motd, echo in .bashrc) is ignored. */
export const OUT = 'LIPSYNC:';

/** Lines our script printed, without the prefix (login noise dropped). */
export function outLines(stdout: string): string[] {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith(OUT))
    .map((l) => l.slice(OUT.length));
}

/** Printed (NUL-terminated) by our scripts before a NUL stream, so login noise before it is skipped. */
export const STREAM_MARKER = 'LIPSYNC-STREAM';

/** The script line that opens a NUL stream (StreamGate passes what follows). */
export const PRINT_STREAM_MARKER = `printf '${STREAM_MARKER}\\0'`;

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
// The root check

/** Exits 4 when $R is not a folder, 3 when it does not exist (R must be set). */
export const ROOT_CHECK = `
if [ ! -d "$R" ]; then
  if [ -e "$R" ] || [ -L "$R" ]; then echo "lipsync: not a directory: $R" >&2; exit ${EXIT_ROOT_NOT_DIR}; fi
  echo "lipsync: no such directory: $R" >&2; exit ${EXIT_ROOT_MISSING}
fi`;

/**
 * N5 for our own folder: rsync writes its temp files into .lipsync and the versions it
 * replaces into .lipsync/trash/DAY/TIME. Another client that swaps one of them for a
 * symlink would have those writes land outside the root; rsync 3.5.0 refuses them, but
 * then drops the backup silently (measured): a version lost. So a transfer (and a small
 * files' script, small-files.ts) does not start
 * while one is a symlink or a file; the error names it and says what to do.
 */
export const META_CHECK = `
for d in "$R/${META_DIR}" "$R/${PARTIAL_DIR}" "$R/${TRASH_DIR}" "$R/${INCOMING_DIR}"; do
  if [ -L "$d" ] || { [ -e "$d" ] && [ ! -d "$d" ]; }; then printf 'lipsync: not a folder: %s\\n' "$d" >&2; exit ${EXIT_META_NOT_DIR}; fi
done
for d in "$R/${TRASH_DIR}"/*; do
  if [ -L "$d" ]; then printf 'lipsync: not a folder: %s\\n' "$d" >&2; exit ${EXIT_META_NOT_DIR}; fi
done`;

/** Sets R to the quoted root and checks it is a folder (exit 3 / 4 otherwise). */
export function requireRootScript(root: string): string {
  return `R=${shQuote(root)}${ROOT_CHECK}`;
}

// ---------------------------------------------------------------------------
// Running scripts

/** Who and where, for the error table: host, user, port and key of an ssh remote; the path worked on. */
export function failureContext(remote: RemoteSpec, ssh: SshOptions, path?: string): FailureContext {
  const ctx: FailureContext = { path: path ?? remote.path };
  if (remote.kind === 'ssh') {
    ctx.host = remote.host;
    if (remote.user !== undefined) ctx.user = remote.user;
    if (remote.port !== undefined) ctx.port = remote.port;
    if (ssh.identityFile !== undefined) ctx.identityFile = ssh.identityFile;
  }
  return ctx;
}

/** The command that runs a POSIX script for this remote: ssh … /bin/sh -s, or /bin/sh -s here. */
export function scriptCommand(remote: RemoteSpec, ssh: SshOptions): [string, string[]] {
  return remote.kind === 'ssh' ? ['ssh', sshArgs(remote, ssh, REMOTE_SH)] : ['/bin/sh', ['-s']];
}

/**
 * The error for a script run that failed (non-zero exit other than the ones the
 * caller accepts). `path`: the folder it worked on; `timeoutMs`: the run's limit,
 * named in a timeout's message when given.
 */
export function scriptFailure(
  remote: RemoteSpec,
  ssh: SshOptions,
  r: Pick<RunResult, 'code' | 'signal' | 'stderr' | 'timedOut'>,
  path: string,
  timeoutMs?: number,
): LipsyncError {
  return classifyScriptFailure(
    { code: r.code, signal: r.signal, stderr: r.stderr, timedOut: r.timedOut, condition: scriptCondition(r.code) },
    failureContext(remote, ssh, path),
    timeoutMs,
  );
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
  const maxBuffer = opts.onStdout ? 64 * 1024 : 1024 * 1024;
  if (remote.kind === 'ssh') {
    // One round trip in the server's kept-open session; a new channel when it is busy or down.
    const r = await sessionFor(remote, ssh).run(wrapScript(script), { ...opts, maxBuffer });
    if (r) return r;
  }
  const [cmd, args] = scriptCommand(remote, ssh);
  const runOpts: Parameters<typeof run>[2] = {
    input: wrapScript(script),
    maxBuffer,
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

/** stderr kept of a streamed child: its tail. */
const STDERR_TAIL = 16 * 1024;

/** A child whose stdout is read as a stream (with backpressure). */
export interface StreamedChild {
  child: ChildProcess;
  stdout: AsyncIterable<Buffer>;
  /** Resolves when the child is gone, with its exit status and stderr's tail. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; spawnError: Error | null }>;
}

/** Runs a command whose stdout is read as a stream; `input` goes to its stdin. */
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
