/**
 * The inotifywait backend: `inotifywait -m -r` as a child process (argument
 * array, no shell). The kernel holds the watches; this side only parses a
 * stream of NUL-terminated records, so memory stays small for huge trees.
 *
 * Output format: `--format '%e%0%w%f%0' --no-newline`, i.e. per event two
 * NUL-terminated fields: the comma-separated event names, then the full path.
 * A path can't contain NUL, so any file name (newline, tab, backslash, quotes,
 * leading dash, long UTF-8) survives. Verified with inotifywait 3.22.6.
 *
 * Notes (verified with inotifywait 3.22.6):
 *  - without -q inotifywait prints "Watches established." on stderr once ready;
 *  - Q_OVERFLOW is only printed when subscribed (`-e q_overflow`): it comes as
 *    "Q_OVERFLOW" with an empty path; inotifywait keeps running;
 *  - `close_write` means "modified" (closed after writing); `modify` (a write, the
 *    file still open) is reported as 'write', so a file still being written is held
 *    back (writing.ts) instead of sent half-done;
 *  - with -r, the watch on a new folder is added after its CREATE is printed:
 *    files created inside it before that are not reported (the caller rescans
 *    new folders);
 *  - when new folders can't be watched it prints "Couldn't watch new directory
 *    X: No space left on device" and keeps running (reported as 'watch-limit').
 */
import type { ChildProcess } from 'node:child_process';
import { spawnChild } from '../proc/run.js';
import { statSync } from 'node:fs';
import type { DirtySnapshot } from '../dirty.js';
import type { Excluder } from '../types.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR } from '../../../shared/layout.js';
import { interpretRecord, InotifyRecordParser, type InotifyRecord } from './records.js';
import { SinceCollector, takeWalkRecords, walkwatchArgs, type WalkSince } from './walkwatch.js';
import { classifyLimitText, limitFailure, WatchStartError } from './limits.js';
import type { WatchEvent, WatchFailure, WatchHandlers, Watcher } from './watcher.js';

/** The events inotifywait is asked for (`modify`: a file still being written, see writing.ts). */
export const INOTIFY_EVENTS = [
  'create',
  'modify',
  'close_write',
  'delete',
  'moved_from',
  'moved_to',
  'attrib',
  'delete_self',
  'move_self',
  'unmount',
  'q_overflow',
] as const;

export const INOTIFY_FORMAT = '%e%0%w%f%0';

const STOP_GRACE_MS = 2000;
const STDERR_TAIL_CHARS = 4000;

/** The inotifywait command line (after the executable) for a root (absolute, no trailing slash). */
export function inotifywaitArgs(root: string): string[] {
  const args = ['-m', '-r', '--format', INOTIFY_FORMAT, '--no-newline'];
  for (const e of INOTIFY_EVENTS) args.push('-e', e);
  // `@path` keeps inotifywait from putting watches in the state folder at all.
  const stateDir = root === '/' ? `/${META_DIR}` : `${root}/${META_DIR}`;
  args.push('--', `@${stateDir}`, root);
  return args;
}

/** Checks the root before starting a backend; throws a WatchStartError. */
export function assertWatchableRoot(root: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(root).isDirectory();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new WatchStartError({
      kind: 'unavailable',
      message:
        code === 'ENOENT'
          ? `Can't watch ${root}: the folder does not exist.`
          : `Can't watch ${root}: ${(err as Error).message}`,
      fix: code === 'ENOENT' ? 'Create the folder or choose another local folder for this pair.' : undefined,
      detail: String(err),
    });
  }
  if (!isDir) {
    throw new WatchStartError({
      kind: 'unavailable',
      message: `Can't watch ${root}: it is not a folder.`,
      fix: 'Choose a folder as the local side of this pair.',
    });
  }
}

export interface InotifywaitOptions {
  excluder?: Excluder;
  /** inotifywait, or perl with `walk` set. */
  executable: string;
  /**
   * Run the walkwatch script (watch/walkwatch.ts) with perl instead of inotifywait;
   * its first walk also lists what changed since `since` (see changedSince()).
   */
  walk?: { since: WalkSince };
}

export class InotifywaitWatcher implements Watcher {
  readonly backend: 'inotifywait' | 'walkwatch';
  private child: ChildProcess | null = null;
  private since: SinceCollector | null = null;
  private sinceResult: DirtySnapshot | null | undefined = undefined;
  private exited: Promise<void> = Promise.resolve();
  private stopping = false;
  private established = false;
  private reportedLimit = false;
  private stderrTail = '';
  private stderrLine = '';

  constructor(
    private readonly root: string,
    private readonly handlers: WatchHandlers,
    private readonly opts: InotifywaitOptions,
  ) {
    this.backend = opts.walk ? 'walkwatch' : 'inotifywait';
  }

  /**
   * After start (walkwatch with a `since`): what changed since then, as a dirty
   * snapshot, or null when the listing is incomplete (compare everything);
   * undefined when nothing was asked.
   */
  changedSince(): DirtySnapshot | null | undefined {
    return this.sinceResult;
  }

  /** The inotifywait process id while it runs (for tests and diagnostics). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): Promise<void> {
    if (this.child) return Promise.reject(new Error('watcher already started'));
    try {
      assertWatchableRoot(this.root);
    } catch (err) {
      return Promise.reject(err);
    }
    this.stopping = false;
    this.established = false;
    this.reportedLimit = false;
    this.stderrTail = '';
    this.stderrLine = '';
    this.since = this.opts.walk?.since ? new SinceCollector(this.opts.excluder) : null;
    this.sinceResult = undefined;

    return new Promise<void>((resolveStart, rejectStart) => {
      let settled = false;
      const ready = (): void => {
        if (settled) return;
        settled = true;
        resolveStart();
      };
      const fail = (failure: WatchFailure): void => {
        if (settled) return;
        settled = true;
        rejectStart(new WatchStartError(failure));
      };

      const args = this.opts.walk ? walkwatchArgs(this.root, this.opts.walk.since) : inotifywaitArgs(this.root);
      const child = spawnChild(this.opts.executable, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      let markExited!: () => void;
      this.exited = new Promise<void>((r) => (markExited = r));

      const parser = new InotifyRecordParser();
      child.stdout!.on('data', (chunk: Buffer) => {
        if (this.onStdout(parser.push(chunk))) ready();
      });
      child.stderr!.setEncoding('utf8');
      child.stderr!.on('data', (text: string) => {
        if (this.onStderr(text)) ready();
      });

      let spawnError: NodeJS.ErrnoException | null = null;
      child.on('error', (err: NodeJS.ErrnoException) => {
        // Only spawn failures (ENOENT, EACCES: no pid) matter; 'close' follows them.
        if (child.pid === undefined) spawnError = err;
      });

      // 'close' rather than 'exit': stderr is fully read by then (for the start failure).
      child.on('close', (code, signal) => {
        this.child = null;
        markExited();
        if (spawnError) {
          fail({
            kind: 'unavailable',
            message: `Can't start the file watcher ${this.opts.executable}: ${spawnError.code ?? spawnError.message}.`,
            fix:
              this.backend === 'walkwatch'
                ? 'Install perl (sudo apt install perl-base).'
                : 'Install inotify-tools (sudo apt install inotify-tools).',
            detail: String(spawnError),
          });
          return;
        }
        if (this.stopping) {
          fail({ kind: 'watcher-died', message: 'The file watcher was stopped before it was ready.' });
          return;
        }
        const tail = this.stderrTail.trim();
        const how = signal ? `signal ${signal}` : `exit code ${code}`;
        if (!settled) {
          fail(this.startFailure(tail, how));
          return;
        }
        this.handlers.onError({
          kind: 'watcher-died',
          message: `The file watcher (${this.backend}) stopped unexpectedly (${how}).`,
          fix: 'Restart syncing for this folder; it rescans the folder to catch up.',
          ...(tail ? { detail: tail } : {}),
        });
      });
    });
  }

  private startFailure(stderr: string, how: string): WatchFailure {
    const limit = classifyLimitText(stderr);
    if (limit) return limitFailure(limit, stderr);
    if (/No such file or directory/.test(stderr)) {
      return { kind: 'unavailable', message: `Can't watch ${this.root}: the folder does not exist.`, detail: stderr };
    }
    return {
      kind: 'watcher-died',
      message: `The file watcher (${this.backend}) exited before its watches were set up (${how}).`,
      ...(stderr ? { detail: stderr } : {}),
    };
  }

  /** Handles stderr text; returns true once "Watches established." was seen. */
  private onStderr(text: string): boolean {
    this.stderrTail = (this.stderrTail + text).slice(-STDERR_TAIL_CHARS);
    const lines = (this.stderrLine + text).split('\n');
    this.stderrLine = (lines.pop() ?? '').slice(-STDERR_TAIL_CHARS);
    for (const line of lines) {
      if (line.startsWith('Watches established')) this.established = true;
      else if (this.established && !this.reportedLimit && !this.stopping && classifyLimitText(line) === 'watch-limit') {
        // New folders can't be watched: inotifywait would keep running blind
        // to them, so stop it and let the caller fall back to rescans.
        this.reportedLimit = true;
        this.die(limitFailure('watch-limit', line));
      }
    }
    return this.established;
  }

  /** Handles records; returns true once walkwatch's READY record was seen. */
  private onStdout(records: InotifyRecord[]): boolean {
    if (this.stopping || records.length === 0) return this.established;
    if (this.opts.walk && !this.established) records = this.takeWalkRecords(records);
    let batch: WatchEvent[] = [];
    const flush = (): void => {
      if (batch.length > 0) {
        const b = batch;
        batch = [];
        this.handlers.onEvents(b);
      }
    };
    for (const rec of records) {
      const m = interpretRecord(rec, this.root);
      if (m.type === 'event') {
        if (!isIgnoredPath(m.event.path, m.event.isDir, this.opts.excluder)) batch.push(m.event);
      } else if (m.type === 'overflow') {
        flush();
        this.handlers.onOverflow();
      } else if (m.type === 'root-gone') {
        flush();
        const what = m.reason === 'UNMOUNT' ? 'was unmounted' : m.reason === 'MOVE_SELF' ? 'was moved' : 'was deleted';
        this.die({
          kind: 'watcher-died',
          message: `The watched folder ${this.root} ${what}; it is no longer watched.`,
          fix: 'Restore the folder, or choose its new location as the local folder of this pair.',
          detail: m.reason,
        });
        return this.established;
      }
    }
    flush();
    return this.established;
  }

  /** walkwatch's first walk: SINCE records, then READY; returns the records after READY. */
  private takeWalkRecords(records: InotifyRecord[]): InotifyRecord[] {
    const { ready, rest } = takeWalkRecords(records, this.root, this.since);
    if (ready) {
      this.established = true;
      this.sinceResult = this.since?.result();
      this.since = null;
    }
    return rest;
  }

  /** Stops the process (no more events) and reports the failure: after onError the watcher is stopped. */
  private die(failure: WatchFailure): void {
    void this.stop();
    this.handlers.onError(failure);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.stopping = true;
    if (!child) return this.exited;
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      this.exited.then(() => false),
      new Promise<boolean>((r) => (timer = setTimeout(() => r(true), STOP_GRACE_MS))),
    ]);
    clearTimeout(timer);
    if (timedOut) {
      child.kill('SIGKILL');
      await this.exited;
    }
  }
}
