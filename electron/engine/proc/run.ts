/**
 * The engine's only child-process wrapper.
 *
 * - Never a shell: a command and an argument array (`shell: false`, always).
 * - `run()` never rejects for a non-zero exit or a signal; it rejects only if the
 *   executable cannot be spawned (the Node error, with `code` 'ENOENT', 'EACCES'...).
 * - Timeouts and aborts stop the child with a ladder: SIGTERM, then SIGKILL after 3 s.
 * - Every live child is tracked, so `stopAllChildren()` can end them at shutdown.
 */

import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { childSpan } from '../trace.js';

export interface RunResult {
  /** Exit code, or null when the child ended by a signal (or was never started because of an abort). */
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** True when the child was stopped because `timeoutMs` elapsed. */
  timedOut: boolean;
}

export interface RunOptions {
  /**
   * Data for the child's stdin; stdin is closed after it. An async iterable is
   * streamed with backpressure (a slow reader pauses the producer). Without
   * input, stdin is /dev/null.
   */
  input?: string | Buffer | AsyncIterable<Buffer | string>;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Stop the child (SIGTERM, then SIGKILL) after this many ms. */
  timeoutMs?: number;
  /** Stop the child (SIGTERM, then SIGKILL) when aborted. An already aborted signal spawns nothing. */
  signal?: AbortSignal;
  onStdout?: (chunk: Buffer) => void;
  onStderr?: (chunk: Buffer) => void;
  /** Keep at most the last N bytes of stdout and of stderr in the result. Default 1 MiB. */
  maxBuffer?: number;
}

export const DEFAULT_MAX_BUFFER = 1024 * 1024;
export const DEFAULT_GRACE_MS = 3000;
/** After 'exit', how long to wait for the stdio pipes to close (a grandchild may hold them). */
const CLOSE_GRACE_MS = 2000;

const live = new Set<ChildProcess>();

function track(child: ChildProcess): void {
  live.add(child);
  const forget = () => live.delete(child);
  child.once('exit', forget);
  child.once('error', () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) forget();
  });
}

const resolved = new Map<string, string | null>();

/** The absolute path of `cmd` on PATH (or cmd itself when it has a slash and exists), else null. */
function which(cmd: string): string | null {
  if (resolved.has(cmd)) return resolved.get(cmd)!;
  let found: string | null = null;
  if (cmd.includes('/')) found = existsSync(cmd) ? cmd : null;
  else {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      if (dir && existsSync(join(dir, cmd))) {
        found = join(dir, cmd);
        break;
      }
    }
  }
  resolved.set(cmd, found);
  return found;
}

/**
 * On Linux, children are started through `setpriv --pdeathsig TERM` so the
 * kernel ends them if the engine itself dies (kill -9): no orphaned rsync
 * keeps writing and no orphaned inotifywait keeps its watches. A command that
 * cannot be found is spawned as is, so the caller still sees ENOENT.
 */
export function withParentDeathSignal(cmd: string, args: string[]): [string, string[]] {
  if (process.platform !== 'linux') return [cmd, args];
  const setpriv = which('setpriv');
  if (!setpriv || !which(cmd)) return [cmd, args];
  return [setpriv, ['--pdeathsig', 'TERM', '--', cmd, ...args]];
}

/** The number of children started through this module that are still running. */
export function liveChildCount(): number {
  return live.size;
}

/**
 * Spawns a long-lived child (a watcher, a daemon) that the caller manages
 * itself; it is tracked for `stopAllChildren()`. Never uses a shell. The
 * caller must listen for 'error' (spawn failures are reported there).
 */
export function spawnChild(cmd: string, args: string[], options: SpawnOptions = {}): ChildProcess {
  const [file, argv] = withParentDeathSignal(cmd, args);
  const child = spawn(file, argv, { ...options, shell: false, windowsHide: true });
  track(child);
  return child;
}

function hasEnded(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (hasEnded(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const onExit = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      child.off('exit', onExit);
      resolve(hasEnded(child));
    }, ms);
    child.once('exit', onExit);
  });
}

function sendSignal(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    child.kill(sig);
  } catch {
    // Already gone.
  }
}

/**
 * Stops a child: SIGTERM, then SIGKILL if it is still running after `graceMs`.
 * Resolves once the child has exited (or, if even SIGKILL is not reported
 * within a few seconds, gives up waiting).
 */
export async function stopProcess(child: ChildProcess, graceMs = DEFAULT_GRACE_MS): Promise<void> {
  if (child.pid === undefined || hasEnded(child)) return;
  sendSignal(child, 'SIGTERM');
  if (await waitExit(child, graceMs)) return;
  sendSignal(child, 'SIGKILL');
  await waitExit(child, 5000);
}

/** Stops every child started by `run()` or `spawnChild()` that is still running. */
export async function stopAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => stopProcess(c)));
}

/** Keeps the last `max` bytes of a stream. */
class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    if (this.max <= 0) return;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.max && this.chunks.length > 0) {
      const first = this.chunks[0] as Buffer;
      const excess = this.size - this.max;
      if (first.length <= excess) {
        this.chunks.shift();
        this.size -= first.length;
      } else {
        this.chunks[0] = first.subarray(excess);
        this.size -= excess;
      }
    }
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

function isAsyncIterable(x: unknown): x is AsyncIterable<Buffer | string> {
  return typeof x === 'object' && x !== null && Symbol.asyncIterator in x;
}

/**
 * Runs `cmd args` to completion and collects its output. See the module comment.
 */
export function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const { input, signal } = opts;
  const maxBuffer = opts.maxBuffer ?? DEFAULT_MAX_BUFFER;

  if (signal?.aborted) {
    return Promise.resolve({ code: null, signal: null, stdout: '', stderr: '', timedOut: false });
  }

  const span = childSpan(cmd);
  return new Promise<RunResult>((resolve0, reject) => {
    const resolve = (r: RunResult): void => {
      span?.();
      resolve0(r);
    };
    let child: ChildProcess;
    try {
      const [file, argv] = withParentDeathSignal(cmd, args);
      child = spawn(file, argv, {
        cwd: opts.cwd,
        env: opts.env,
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        shell: false,
        windowsHide: true,
      });
    } catch (e) {
      reject(e);
      return;
    }

    const out = new TailBuffer(maxBuffer);
    const err = new TailBuffer(maxBuffer);
    let timedOut = false;
    let spawned = false;
    let settled = false;
    let exitCode: number | null = null;
    let exitSignal: NodeJS.Signals | null = null;
    let timer: NodeJS.Timeout | undefined;
    let closeTimer: NodeJS.Timeout | undefined;
    let stopping: Promise<void> | undefined;

    const stop = () => {
      stopping ??= stopProcess(child);
    };
    const onAbort = () => stop();

    const cleanup = () => {
      if (timer) clearTimeout(timer);
      if (closeTimer) clearTimeout(closeTimer);
      signal?.removeEventListener('abort', onAbort);
    };

    const finish = () => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve({ code: exitCode, signal: exitSignal, stdout: out.toString(), stderr: err.toString(), timedOut });
    };

    child.once('spawn', () => {
      spawned = true;
      track(child);
      if (opts.timeoutMs !== undefined && opts.timeoutMs > 0) {
        timer = setTimeout(() => {
          timedOut = true;
          stop();
        }, opts.timeoutMs);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) stop();
      // A failing input producer must not leave the child running on a truncated input.
      if (input !== undefined && child.stdin) void feed(child.stdin, input, stop);
    });

    child.on('error', (e) => {
      if (!spawned && !settled) {
        settled = true;
        cleanup();
        reject(e);
      }
      // After a successful spawn, errors (a failed kill) are not fatal: 'exit' follows.
    });

    child.stdout?.on('data', (chunk: Buffer) => {
      out.push(chunk);
      opts.onStdout?.(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err.push(chunk);
      opts.onStderr?.(chunk);
    });

    child.once('exit', (code, sig) => {
      exitCode = code;
      exitSignal = sig;
      // Normally 'close' follows at once; if a grandchild keeps our pipes open, do not hang.
      closeTimer = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        finish();
      }, CLOSE_GRACE_MS);
    });
    child.once('close', (code, sig) => {
      if (exitCode === null && exitSignal === null) {
        exitCode = code;
        exitSignal = sig;
      }
      finish();
    });
  });
}

/**
 * Writes `input` to stdin with backpressure, then closes it. A child that stops
 * reading early is fine. If an async-iterable producer throws, the child is stopped.
 */
async function feed(
  stdin: NodeJS.WritableStream & { destroyed?: boolean; writableEnded?: boolean },
  input: NonNullable<RunOptions['input']>,
  onProducerError: () => void,
): Promise<void> {
  let broken = false;
  stdin.on('error', () => {
    // EPIPE when the child exits before reading everything: not our error to report.
    broken = true;
  });
  if (!isAsyncIterable(input)) {
    stdin.end(input);
    return;
  }
  const waitDrain = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        stdin.off('drain', done);
        stdin.off('close', done);
        stdin.off('error', done);
        resolve();
      };
      stdin.on('drain', done);
      stdin.on('close', done);
      stdin.on('error', done);
    });
  try {
    for await (const chunk of input) {
      if (broken || stdin.destroyed) break;
      if (!stdin.write(chunk)) await waitDrain();
    }
  } catch {
    // The producer failed: stop the child rather than let it act on a partial input.
    onProducerError();
    return;
  }
  if (!broken && !stdin.destroyed && !stdin.writableEnded) stdin.end();
}
