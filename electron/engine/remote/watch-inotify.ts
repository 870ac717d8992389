/**
 * What the two inotify modes of the remote change feed share (watch-inotify-ssh.ts,
 * watch-inotify-local.ts): the backoff between reconnection attempts, and a local
 * watch event as a RemoteChange.
 */

import type { WatchEvent } from '../watch/watcher.js';
import type { RemoteChange } from './watch.js';

export const DEFAULT_BACKOFF_MAX_MS = 60_000;
const INITIAL_BACKOFF_MS = 1_000;
/** A connection that lasted this long resets the backoff. */
export const STABLE_CONNECTION_MS = 10_000;

/** 1 s, 2 s, 4 s … capped. */
export class Backoff {
  private next = INITIAL_BACKOFF_MS;
  constructor(private readonly max: number) {}
  take(): number {
    const d = Math.min(this.next, this.max);
    this.next = Math.min(this.next * 2, this.max);
    return d;
  }
  reset(): void {
    this.next = INITIAL_BACKOFF_MS;
  }
}

export function toChange(e: WatchEvent): RemoteChange {
  return { path: e.path, isDir: e.isDir, kind: e.kind };
}
