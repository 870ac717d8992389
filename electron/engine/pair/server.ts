/**
 * A pair's server side: connecting and checking it once (the probe, rsync, the
 * capability probe, the root's marker, the meta folders), the server's change feed
 * (inotifywait streamed over ssh, or polling) whose events become triggers, and the
 * daily trash purge. After a failed cycle the pair marks the server lost: the next
 * cycle connects and checks it again.
 */
import { randomUUID } from 'node:crypto';
import type { PairSettings } from '../../../shared/settings.js';
import type { Excluder, RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import type { StateDb } from '../state/db.js';
import type { DirtySnapshot } from '../dirty.js';
import type { ActivityLog } from '../log.js';
import { purgeLocalTrash, type RemoteOps } from '../remote/ops.js';
import { probeCapabilities } from '../remote/probe.js';
import { createRemoteWatcher, type RemoteWatcher } from '../remote/watch.js';
import { rsyncSymlinkWarning, rsyncVersion } from '../remote/rsync.js';
import { toErrorInfo } from '../errors.js';
import { traced } from '../trace.js';
import { remoteMarkerId } from './clean-stop.js';
import { serverMarkerProblem, serverRootProblem } from './roots.js';
import type { Trigger } from './triggers.js';

const NO_CAPS: RemoteCapabilities = { inotifywait: false, gnuFind: false };
const DAY_MS = 24 * 3600_000;

export type FeedState = { mode: 'inotify' | 'poll'; connected: boolean; error?: string };

/** What the server side reads of and tells its pair. */
export interface ServerHost {
  readonly pair: string;
  readonly remote: RemoteSpec;
  readonly log: ActivityLog;
  /** The pair runs with watchers (a daemon): the server's feed runs too. */
  readonly watch: boolean;
  readonly trashDays: number;
  readonly remotePollMs?: number;
  ssh(): SshOptions;
  settings(): PairSettings;
  /** The pair's state database (throws when the pair is stopping). */
  db(): StateDb;
  excluder(): Excluder;
  isStopped(): boolean;
  trigger(t: Trigger): void;
  /** The feed connected or dropped: the pair's status changed. */
  onFeedState(): void;
  /** The feed's first walk listed what changed since the clean stop's marker `token`. */
  onChangedSince(token: string, listed: DirtySnapshot | null): void;
}

export class PairServer {
  private connected = false;
  private connecting: Promise<void> | null = null;
  private capabilities: RemoteCapabilities | null = null;
  private watcher: RemoteWatcher | null = null;
  private feedState: FeedState | null = null;
  private lastPurgeAt = 0;
  /** The marker the feed's first walk lists changes since (after a clean stop), else null. */
  private sinceMarker: string | null = null;
  private resumeAt: string | null = null;

  constructor(
    private readonly ops: RemoteOps,
    private readonly host: ServerHost,
  ) {}

  /** The server was connected and checked (and stays so until lost()). */
  get ready(): boolean {
    return this.connected;
  }

  /** What the server can do (nothing known before it was connected). */
  get caps(): RemoteCapabilities {
    return this.capabilities ?? NO_CAPS;
  }

  get capsKnown(): RemoteCapabilities | null {
    return this.capabilities;
  }

  get feed(): FeedState | null {
    return this.feedState;
  }

  /**
   * After a clean stop: the feed's first walk also lists what changed since this marker; with
   * `pos` (the shared watcher's journal position at the stop), the feed resumes there instead
   * and lists only when that position is gone (J8).
   */
  watchSince(marker: string | null, pos: string | null = null): void {
    this.sinceMarker = marker;
    this.resumeAt = marker !== null ? pos : null;
  }

  /** The journal position the feed has read up to (following the shared watcher), else null. */
  get position(): string | null {
    return this.watcher?.position?.() ?? null;
  }

  /** A cycle failed: connect and check again before the next. */
  lost(): void {
    this.connected = false;
  }

  /** Connects and checks the server once (concurrent callers share the attempt). */
  prepare(): Promise<void> {
    if (this.connected) return Promise.resolve();
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  /** At stop: the connecting attempt ends, the feed stops. */
  async stop(): Promise<void> {
    await this.connecting?.catch(() => undefined);
    await this.watcher?.stop().catch(() => undefined);
    this.watcher = null;
  }

  private async connect(): Promise<void> {
    if (this.connected) return;
    const h = this.host;
    const remoteText = h.settings().remote;
    const probe = await traced('probe', () => this.ops.probe());
    const rootProblem = serverRootProblem(probe, remoteText);
    if (rootProblem) throw rootProblem;
    // N5: an rsync whose receiver follows a symlinked parent leaves a race window; say so, sync on.
    const oldRsync = rsyncSymlinkWarning(
      await rsyncVersion(),
      probe.rsyncVersion,
      h.remote.kind === 'ssh' ? h.remote.host : 'the server',
    );
    if (oldRsync) h.log.write({ pair: h.pair, level: 'warn', event: 'state', msg: oldRsync });
    // The remote root's marker names the shared folder (every client syncing it joins the same id).
    // Read alongside the capability probe: two sessions over the one ssh connection.
    const capsProbe = probeCapabilities(h.remote, h.ssh());
    capsProbe.catch(() => undefined); // seen below, unless a check here throws first
    const marker = await this.ops.readMarker();
    const db = h.db();
    const joined = db.getMeta('remoteFolderId');
    const markerProblem = serverMarkerProblem(marker, joined, db.count() > 0, remoteText);
    if (markerProblem) throw markerProblem;
    this.capabilities = await capsProbe;
    // The server's watcher (it ignores .lipsync) starts while the meta folders are made.
    const watching =
      h.watch && !h.isStopped() && h.settings().direction !== 'send-only' && !this.watcher
        ? traced('remote watcher start', () => this.startFeed())
        : Promise.resolve();
    watching.catch(() => undefined);
    // Also removes what an interrupted folder push of this pair left in .lipsync/incoming.
    await this.ops.prepareMeta(`${remoteMarkerId(h.db())}-`);
    if (marker === null) {
      // Another client may be joining this empty folder at this moment: the first id written stands.
      db.setMeta('remoteFolderId', await this.ops.claimMarker(randomUUID()));
    } else if (!joined) {
      db.setMeta('remoteFolderId', marker);
    }
    await watching;
    this.connected = true;
    this.purgeTrashDaily();
  }

  /** Trash older than the configured age goes, on both sides, once a day. */
  private purgeTrashDaily(): void {
    if (Date.now() - this.lastPurgeAt < DAY_MS) return;
    this.lastPurgeAt = Date.now();
    const h = this.host;
    const days = h.trashDays;
    void Promise.all([this.ops.purgeTrash(days), purgeLocalTrash(h.settings().local, days)]).then(
      ([remote, local]) => {
        if (remote + local > 0) {
          h.log.write({
            pair: h.pair,
            level: 'info',
            event: 'state',
            msg: `purged ${remote + local} trash folder(s) older than ${days} days`,
          });
        }
      },
      () => undefined,
    );
  }

  /** The server's change feed: inotifywait streamed over ssh, or polling; its events are triggers. */
  private async startFeed(): Promise<void> {
    const h = this.host;
    const sinceMarker = this.sinceMarker;
    const watcher = createRemoteWatcher(
      h.remote,
      h.ssh(),
      h.remote.path,
      this.caps,
      {
        onChanges: (changes) => h.trigger({ reason: 'remote-changes', changes }),
        onRescanNeeded: () => h.trigger({ reason: 'remote-rescan' }),
        onState: (state) => {
          this.feedState = state;
          h.onFeedState();
        },
        onNotice: (msg) => h.log.write({ pair: h.pair, level: 'warn', event: 'state', msg }),
      },
      {
        excluder: h.excluder(),
        clientId: remoteMarkerId(h.db()),
        pollIntervalMs: h.remotePollMs,
        ...(sinceMarker !== null ? { sinceMarkerId: sinceMarker } : {}),
        ...(this.resumeAt !== null ? { resumeAt: this.resumeAt } : {}),
      },
    );
    this.sinceMarker = null;
    this.resumeAt = null;
    this.watcher = watcher;
    try {
      await watcher.start();
      if (watcher.resumed?.())
        h.log.write({
          pair: h.pair,
          level: 'info',
          event: 'state',
          msg: `resumed the server's change journal where the last stop left it, instead of listing what changed there`,
        });
      const listed = watcher.changedSince?.();
      if (sinceMarker !== null && listed !== undefined) h.onChangedSince(sinceMarker, listed);
      this.feedState = { mode: watcher.mode, connected: true };
    } catch (e) {
      this.feedState = { mode: watcher.mode, connected: false, error: toErrorInfo(e).message };
    }
  }
}
