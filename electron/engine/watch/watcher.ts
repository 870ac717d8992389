/**
 * The local watcher, behind one small interface. Two backends:
 *  - inotifywait (inotify-tools), run as a child process: the kernel keeps the
 *    watches, the process holds little memory even for a million files;
 *  - @parcel/watcher, in process, as a fallback (it keeps the whole tree in
 *    memory and silently drops inotify queue overflows).
 *
 * Events are hints: the caller debounces them, stats the paths and rescans
 * new folders (a file created right after its folder can be missed while the
 * watch on the new folder is being added) and the whole tree on overflow.
 */
import { isAbsolute, resolve } from 'node:path';
import { isExecutable, searchPath } from '../proc/which.js';
import type { DirtySnapshot } from '../dirty.js';
import type { Excluder } from '../types.js';
import { findPerl, type WalkSince } from './walkwatch.js';
import { InotifywaitWatcher } from './inotifywait.js';
import { WatchStartError } from './limits.js';
import { ParcelWatcher } from './parcel.js';

export { WatchStartError } from './limits.js';

/**
 * 'modify': closed after writing (CLOSE_WRITE), or created complete (a symlink, a hard
 * link); 'write': written to and not closed yet (MODIFY); 'create' of a file: created
 * and, unless a 'modify' follows, still open for writing (see writing.ts).
 */
export type WatchEventKind = 'create' | 'modify' | 'write' | 'delete' | 'move-from' | 'move-to' | 'attrib';

export interface WatchEvent {
  /** Relative POSIX path inside the root; '' is the root itself. */
  path: string;
  kind: WatchEventKind;
  /** Whether the path is a directory, when the backend knows (parcel: always false). */
  isDir: boolean;
}

export interface WatchHandlers {
  /** Batches as they are read (no debounce here: the caller debounces). */
  onEvents(events: WatchEvent[]): void;
  /** The kernel queue overflowed (IN_Q_OVERFLOW): events were lost, the caller must rescan. */
  onOverflow(): void;
  /** The watcher failed or died after start. It is stopped by then: no more events follow. */
  onError(err: WatchFailure): void;
}

export interface Watcher {
  readonly backend: 'walkwatch' | 'inotifywait' | 'parcel';
  /** Resolves once the watches are established; rejects with a WatchStartError. */
  start(): Promise<void>;
  /** Stops watching; resolves when the backend is gone (the inotifywait process exited). */
  stop(): Promise<void>;
  /**
   * After start, walkwatch only: what changed since WatcherOptions.since (null: the
   * listing is incomplete, compare everything); undefined when the backend did not list.
   */
  changedSince?(): DirtySnapshot | null | undefined;
}

export interface WatchFailure {
  kind: 'watch-limit' | 'instance-limit' | 'watcher-died' | 'unavailable';
  message: string;
  fix?: string;
  detail?: string;
  limit?: LimitAdvice;
}

export interface LimitAdvice {
  sysctl: 'fs.inotify.max_user_watches' | 'fs.inotify.max_user_instances';
  current: number | null;
  recommended: number;
  /** Raises the limit until the next reboot, e.g. `sudo sysctl fs.inotify.max_user_watches=1048576`. */
  command: string;
  /** Makes it permanent, e.g. `echo fs.inotify.max_user_watches=1048576 | sudo tee /etc/sysctl.d/90-lipsync-watches.conf && sudo sysctl --system`. */
  permanent: string;
}

export interface WatcherOptions {
  excluder?: Excluder;
  backend?: 'auto' | 'walkwatch' | 'inotifywait' | 'parcel';
  /** walkwatch: its first walk also lists what changed since then (see Watcher.changedSince). */
  since?: WalkSince;
  /** The inotifywait executable; else env LIPSYNC_INOTIFYWAIT, else `inotifywait` on PATH. */
  inotifywaitPath?: string;
  /** walkwatch: the perl executable; else `perl` on PATH. */
  perlPath?: string;
}

/** Shown when the parcel backend is used on Linux because inotifywait is missing. */
export function fallbackNotice(): string {
  return (
    'Using @parcel/watcher because inotifywait was not found; install inotify-tools ' +
    '(sudo apt install inotify-tools) to watch large trees with far less memory.'
  );
}

/**
 * The inotifywait executable to use, or null when none is found:
 * opts.inotifywaitPath, else env LIPSYNC_INOTIFYWAIT, else `inotifywait` on PATH.
 */
export function findInotifywait(explicit?: string, env: NodeJS.ProcessEnv = process.env): string | null {
  const configured = explicit ?? (env.LIPSYNC_INOTIFYWAIT || undefined);
  if (configured !== undefined) {
    if (!configured.includes('/')) return searchPath(configured, env);
    const file = isAbsolute(configured) ? configured : resolve(configured);
    return isExecutable(file) ? file : null;
  }
  return searchPath('inotifywait', env);
}

/**
 * Creates (does not start) a watcher for `root`.
 * backend 'auto' on Linux: walkwatch when perl is found (and LIPSYNC_WALKWATCH is not 0),
 * else inotifywait when found, else @parcel/watcher (see fallbackNotice()).
 * backend 'inotifywait' or 'walkwatch' with no executable found: start() rejects with kind 'unavailable'.
 */
export async function createWatcher(
  root: string,
  handlers: WatchHandlers,
  opts: WatcherOptions = {},
): Promise<Watcher> {
  const absRoot = resolve(root);
  const backend = opts.backend ?? 'auto';
  if (backend === 'parcel') return new ParcelWatcher(absRoot, handlers, opts.excluder);
  const excluder = opts.excluder ? { excluder: opts.excluder } : {};
  if (backend === 'walkwatch' || (backend === 'auto' && process.platform === 'linux')) {
    const perl = findPerl(opts.perlPath);
    if (perl !== null) {
      return new InotifywaitWatcher(absRoot, handlers, {
        ...excluder,
        executable: perl,
        walk: { since: opts.since ?? null },
      });
    }
    if (backend === 'walkwatch') return unavailable('walkwatch', 'perl', 'Install perl (sudo apt install perl-base).');
  }
  const exe = findInotifywait(opts.inotifywaitPath);
  if (backend === 'inotifywait') {
    if (exe === null) return unavailableInotifywait(opts.inotifywaitPath);
    return new InotifywaitWatcher(absRoot, handlers, { excluder: opts.excluder, executable: exe });
  }
  if (process.platform === 'linux' && exe !== null) {
    return new InotifywaitWatcher(absRoot, handlers, { excluder: opts.excluder, executable: exe });
  }
  return new ParcelWatcher(absRoot, handlers, opts.excluder);
}

function unavailableInotifywait(configured: string | undefined): Watcher {
  const what = configured ?? process.env.LIPSYNC_INOTIFYWAIT ?? 'inotifywait';
  return unavailable('inotifywait', what, 'Install inotify-tools (sudo apt install inotify-tools).');
}

function unavailable(backend: 'walkwatch' | 'inotifywait', what: string, fix: string): Watcher {
  return {
    backend,
    start: () =>
      Promise.reject(
        new WatchStartError({
          kind: 'unavailable',
          message: `Can't start the file watcher: ${what} was not found or is not executable.`,
          fix,
        }),
      ),
    stop: () => Promise.resolve(),
  };
}
