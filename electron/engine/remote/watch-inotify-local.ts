/**
 * The remote change feed's inotify mode on a local remote (a mounted disk; see
 * watch.ts for the interface): the local watcher (watch/watcher.ts) on the
 * remote path, restarted with exponential backoff (1 s … backoffMaxMs) if it
 * dies, and then asking for a rescan ('reconnected').
 */

import { LipsyncError } from '../errors.js';
import { findPerl } from '../watch/walkwatch.js';
import type { DirtySnapshot } from '../dirty.js';
import { createWatcher, type Watcher, type WatchFailure } from '../watch/watcher.js';
import { absPath } from './paths.js';
import { Backoff, DEFAULT_BACKOFF_MAX_MS, STABLE_CONNECTION_MS, toChange } from './watch-inotify.js';
import { pollMarkerPath } from './watch-marker.js';
import type { RemoteWatcher, RemoteWatchHandlers, RemoteWatchOptions } from './watch.js';

function watchError(f: WatchFailure): LipsyncError {
  const kind = f.kind === 'watch-limit' || f.kind === 'instance-limit' ? 'watch-limit' : 'watcher-died';
  const extra: { fix?: string; detail?: string } = {};
  if (f.fix !== undefined) extra.fix = f.fix;
  if (f.detail !== undefined) extra.detail = f.detail;
  return new LipsyncError(kind, f.message, extra);
}

export class LocalInotifyWatcher implements RemoteWatcher {
  readonly mode = 'inotify' as const;
  private watcher: Watcher | null = null;
  private started = false;
  private stopping = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly backoff: Backoff;
  /** Bumped on every (re)start: events and errors of an older watcher are ignored. */
  private generation = 0;
  private startedAt = 0;
  private sinceResult: DirtySnapshot | null | undefined = undefined;

  constructor(
    private readonly root: string,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.backoff = new Backoff(opts.backoffMaxMs ?? DEFAULT_BACKOFF_MAX_MS);
  }

  async start(): Promise<void> {
    if (this.started) throw new Error('remote watcher already started');
    this.started = true;
    this.stopping = false;
    try {
      await this.open(false);
    } catch (e) {
      this.stopping = true;
      throw e;
    }
  }

  pollNow(): Promise<void> {
    return Promise.resolve();
  }

  changedSince(): DirtySnapshot | null | undefined {
    return this.sinceResult;
  }

  private async open(isRestart: boolean): Promise<void> {
    const gen = ++this.generation;
    const w = await createWatcher(
      this.root,
      {
        onEvents: (events) => {
          if (gen === this.generation && !this.stopping) this.handlers.onChanges(events.map(toChange));
        },
        onOverflow: () => {
          if (gen === this.generation && !this.stopping) this.handlers.onRescanNeeded('overflow');
        },
        onError: (f) => {
          if (gen !== this.generation || this.stopping) return;
          this.watcher = null;
          if (Date.now() - this.startedAt >= STABLE_CONNECTION_MS) this.backoff.reset();
          this.handlers.onState({ mode: 'inotify', connected: false, error: f.message });
          this.scheduleRestart();
        },
      },
      {
        backend: findPerl() !== null ? 'walkwatch' : 'inotifywait',
        ...(this.opts.excluder ? { excluder: this.opts.excluder } : {}),
        ...(!isRestart && this.opts.sinceMarkerId !== undefined
          ? { since: { markerFile: absPath(this.root, pollMarkerPath(this.opts.sinceMarkerId)) } }
          : {}),
      },
    );
    try {
      await w.start();
      if (!isRestart) this.sinceResult = w.changedSince?.();
    } catch (e) {
      const f = (e as { failure?: WatchFailure }).failure;
      throw f ? watchError(f) : e;
    }
    if (this.stopping) {
      await w.stop();
      return;
    }
    this.watcher = w;
    this.startedAt = Date.now();
    this.handlers.onState({ mode: 'inotify', connected: true });
    if (isRestart) this.handlers.onRescanNeeded('reconnected');
  }

  private scheduleRestart(): void {
    if (this.stopping || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.stopping) return;
      this.open(true).catch((e: unknown) => {
        if (this.stopping) return;
        this.handlers.onState({ mode: 'inotify', connected: false, error: (e as Error).message });
        this.scheduleRestart();
      });
    }, this.backoff.take());
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const w = this.watcher;
    this.watcher = null;
    if (w) await w.stop();
  }
}
