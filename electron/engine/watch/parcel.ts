/**
 * The @parcel/watcher backend: the fallback when inotifywait isn't available
 * (or not on Linux). It runs in process and keeps the whole tree in memory;
 * on Linux it silently drops inotify queue overflows (onOverflow is never
 * called), and it reports moves as delete + create.
 * Events: create/update/delete -> create/modify/delete; isDir is unknown (false).
 */
import { relative, sep } from 'node:path';
import type { Excluder } from '../types.js';
import { assertWatchableRoot } from './inotifywait.js';
import { isIgnoredPath } from '../excludes.js';
import { META_DIR } from '../../../shared/layout.js';
import { classifyLimitText, limitFailure, WatchStartError } from './limits.js';
import type { WatchEvent, WatchEventKind, WatchFailure, WatchHandlers, Watcher } from './watcher.js';

type ParcelModule = typeof import('@parcel/watcher');
type Subscription = Awaited<ReturnType<ParcelModule['subscribe']>>;

const KIND_OF: Record<string, WatchEventKind> = { create: 'create', update: 'modify', delete: 'delete' };

async function loadParcel(): Promise<ParcelModule> {
  const mod = (await import('@parcel/watcher')) as ParcelModule & { default?: ParcelModule };
  return mod.default ?? mod;
}

function failureFrom(err: unknown, starting: boolean): WatchFailure {
  const text = err instanceof Error ? err.message : String(err);
  const limit = classifyLimitText(text);
  if (limit) return limitFailure(limit, text);
  return {
    kind: 'watcher-died',
    message: starting
      ? 'The file watcher (@parcel/watcher) could not start.'
      : 'The file watcher (@parcel/watcher) reported an error and may have stopped.',
    fix: 'Restart syncing for this folder; it rescans the folder to catch up.',
    detail: text,
  };
}

export class ParcelWatcher implements Watcher {
  readonly backend = 'parcel' as const;
  private sub: Subscription | null = null;
  private stopped = false;

  constructor(
    private readonly root: string,
    private readonly handlers: WatchHandlers,
    private readonly excluder?: Excluder,
  ) {}

  async start(): Promise<void> {
    if (this.sub) throw new Error('watcher already started');
    assertWatchableRoot(this.root);
    this.stopped = false;
    let parcel: ParcelModule;
    try {
      parcel = await loadParcel();
    } catch (err) {
      throw new WatchStartError({
        kind: 'unavailable',
        message: "Can't start the file watcher: @parcel/watcher could not be loaded.",
        fix: 'Install inotify-tools (sudo apt install inotify-tools), or reinstall lipsync.',
        detail: String(err),
      });
    }
    try {
      this.sub = await parcel.subscribe(this.root, (err, events) => this.onNative(err, events), {
        ignore: [META_DIR],
      });
    } catch (err) {
      throw new WatchStartError(failureFrom(err, true));
    }
  }

  private onNative(err: Error | null, events: { path: string; type: string }[]): void {
    if (this.stopped) return;
    if (err) {
      // After onError the watcher is stopped (the caller drops it and rescans).
      void this.stop().catch(() => undefined);
      this.handlers.onError(failureFrom(err, false));
      return;
    }
    const batch: WatchEvent[] = [];
    for (const e of events) {
      const kind = KIND_OF[e.type];
      if (kind === undefined) continue;
      const rel = relative(this.root, e.path).split(sep).join('/');
      if (rel.startsWith('../') || rel === '..') continue;
      if (isIgnoredPath(rel, false, this.excluder)) continue;
      batch.push({ path: rel, kind, isDir: false });
    }
    if (batch.length > 0) this.handlers.onEvents(batch);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const sub = this.sub;
    this.sub = null;
    if (sub) await sub.unsubscribe();
  }
}
