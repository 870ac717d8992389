/**
 * The remote change feed: what changed ON THE SERVER, without rescanning it.
 * One interface (RemoteWatcher, here), and the choice of its mode:
 *
 * inotify (the server has inotifywait):
 *  - ssh remote: one long-lived ssh session, reconnected with backoff
 *    (watch-inotify-ssh.ts), following the server folder's ONE shared
 *    watcher's journal (journal.ts, rules J1–J7), or, where that cannot run,
 *    running walkwatch or `inotifywait -m -r` of its own;
 *  - local remote (a mounted disk): the local watcher on the remote path,
 *    restarted with backoff (watch-inotify-local.ts).
 *
 * poll (no inotifywait): every pollIntervalMs, one command lists what changed
 * since this client's marker on the server (watch-poll.ts; the marker and its
 * listing: watch-marker.ts).
 *
 * Changes are hints, like local watch events: the caller stats the paths.
 */

import type { Excluder, RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import type { DirtySnapshot } from '../dirty.js';
import { normalizeRoot } from './paths.js';
import { LocalInotifyWatcher } from './watch-inotify-local.js';
import { SshInotifyWatcher } from './watch-inotify-ssh.js';
import { PollWatcher } from './watch-poll.js';

// The marker's listing and setting, for the cycle and a clean stop.
export { listChangedSince, setChangeMarker } from './watch-marker.js';

export interface RemoteChange {
  path: string;
  isDir: boolean;
  /** As WatchEventKind (watch/watcher.ts): 'write' is a file written to and not closed yet. */
  kind: 'create' | 'modify' | 'write' | 'delete' | 'move-from' | 'move-to' | 'attrib';
}

export interface RemoteWatchHandlers {
  onChanges(changes: RemoteChange[]): void;
  /** Events were (or may have been) missed: overflow, reconnect after a gap, first poll, no GNU find. */
  onRescanNeeded(reason: string): void;
  onState(s: { mode: 'inotify' | 'poll'; connected: boolean; error?: string }): void;
  /** Something the user should know that is not a failure (the shared watcher could not be used). */
  onNotice?(msg: string): void;
}

export interface RemoteWatcher {
  readonly mode: 'inotify' | 'poll';
  /**
   * inotify: resolves once the watches are established; poll: after the first
   * poll. Rejects with a LipsyncError when that first attempt fails (the
   * watcher is then stopped); later failures are reported with onState and
   * retried.
   */
  start(): Promise<void>;
  /** Stops watching; resolves when the session (and the remote inotifywait) is gone. */
  stop(): Promise<void>;
  /** poll: polls now (after a poll in progress, if any); never rejects (failures go to onState). inotify: no-op. */
  pollNow(): Promise<void>;
  /**
   * After start, with opts.sinceMarkerId, where the server ran walkwatch: what changed
   * there since the marker (null: incomplete, compare everything); else undefined.
   */
  changedSince?(): DirtySnapshot | null | undefined;
  /**
   * inotify mode, following the server's shared watcher: the journal position read last
   * (`gen:offset`; every record before it has been handed to onChanges); else null.
   */
  position?(): string | null;
  /** With opts.resumeAt: whether the first session resumed at that position (else it listed since the marker). */
  resumed?(): boolean | undefined;
}

export interface RemoteWatchOptions {
  /** Poll mode: ms between polls. Default 30000. */
  pollIntervalMs?: number;
  excluder?: Excluder;
  /** Longest wait between reconnection attempts (inotify mode). Default 60000. */
  backoffMaxMs?: number;
  /**
   * Poll mode: names this client's marker on the server (letters, digits, '-', '_'; at most 64).
   * Pass a stable id persisted by the caller; default a random one (the first poll then rescans).
   */
  clientId?: string;
  /**
   * inotify mode: the first watch walk also lists what changed since this marker
   * (`.lipsync/poll-marker-ID`, see changedSince()), where walkwatch can run.
   */
  sinceMarkerId?: string;
  /**
   * inotify mode, following the shared watcher: the journal position recorded at a clean stop
   * or checkpoint (J8). The first session resumes there and lists nothing; only when that
   * position is gone does its walk list what changed since `sinceMarkerId`.
   */
  resumeAt?: string;
}

/** The feed for this remote: inotify where the server has inotifywait (over ssh, or local), else polling. */
export function createRemoteWatcher(
  remote: RemoteSpec,
  ssh: SshOptions,
  root: string,
  caps: RemoteCapabilities,
  handlers: RemoteWatchHandlers,
  opts: RemoteWatchOptions = {},
): RemoteWatcher {
  const r = normalizeRoot(root);
  if (caps.inotifywait) {
    return remote.kind === 'ssh'
      ? new SshInotifyWatcher(remote, ssh, r, handlers, opts)
      : new LocalInotifyWatcher(r, handlers, opts);
  }
  return new PollWatcher(remote, ssh, r, caps, handlers, opts);
}
