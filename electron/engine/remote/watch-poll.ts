/**
 * The remote change feed's poll mode, for a server without inotifywait (see
 * watch.ts for the interface): every pollIntervalMs, ONE command lists what
 * changed since this client's marker (watch-marker.ts, GNU find). The first poll
 * (no marker yet) asks for a rescan ('first poll'). Without GNU find, every
 * poll asks for a rescan ('no GNU find on the server: full listing'), which is
 * slow on big trees.
 */

import { randomBytes } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { RemoteCapabilities, RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError } from '../errors.js';
import { requireRootScript, runScript, scriptFailure } from './script.js';
import { listChangedSince, pollMarkerPath } from './watch-marker.js';
import type { RemoteWatcher, RemoteWatchHandlers, RemoteWatchOptions } from './watch.js';

export const DEFAULT_POLL_INTERVAL_MS = 30_000;

export class PollWatcher implements RemoteWatcher {
  readonly mode = 'poll' as const;
  private readonly interval: number;
  private readonly clientId: string;
  private timer: NodeJS.Timeout | null = null;
  private chain: Promise<void> = Promise.resolve();
  private running = false;
  private lastState: string | null = null;

  constructor(
    private readonly remote: RemoteSpec,
    private readonly ssh: SshOptions,
    private readonly root: string,
    private readonly caps: RemoteCapabilities,
    private readonly handlers: RemoteWatchHandlers,
    private readonly opts: RemoteWatchOptions,
  ) {
    this.interval = Math.max(100, opts.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS);
    this.clientId = opts.clientId ?? randomBytes(8).toString('hex');
    pollMarkerPath(this.clientId); // validates
  }

  async start(): Promise<void> {
    if (this.running) throw new Error('remote watcher already started');
    this.running = true;
    const first = this.chain.then(() => this.poll());
    this.chain = first.catch(() => undefined);
    try {
      await first;
    } catch (e) {
      this.running = false;
      throw e;
    }
    this.schedule();
  }

  pollNow(): Promise<void> {
    const p = this.chain.then(() => this.pollReported());
    this.chain = p;
    return p;
  }

  async stop(): Promise<void> {
    this.running = false;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    await this.chain;
  }

  private schedule(): void {
    if (!this.running || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (!this.running) return;
      const p = this.chain.then(() => this.pollReported());
      this.chain = p;
      void p.then(() => this.schedule());
    }, this.interval);
  }

  private state(connected: boolean, error?: string): void {
    const key = `${connected}:${error ?? ''}`;
    if (key === this.lastState) return;
    this.lastState = key;
    this.handlers.onState(error === undefined ? { mode: 'poll', connected } : { mode: 'poll', connected, error });
  }

  /** A poll whose failure is reported with onState rather than thrown. */
  private async pollReported(): Promise<void> {
    if (!this.running) return;
    try {
      await this.poll();
    } catch (e) {
      this.state(false, (e as Error).message);
    }
  }

  private async poll(): Promise<void> {
    if (!this.caps.gnuFind) {
      await this.checkRoot();
      this.state(true);
      this.handlers.onRescanNeeded('no GNU find on the server: full listing');
      return;
    }
    const r = await listChangedSince(this.remote, this.ssh, this.root, this.clientId, this.opts.excluder, (b) =>
      this.handlers.onChanges(b),
    );
    if (r.result === 'no-marker') {
      this.state(true);
      this.handlers.onRescanNeeded('first poll');
      return;
    }
    if (r.result === 'partial') {
      // find reported what it could read; the marker was kept, so the next poll covers this window again.
      this.state(true, `Some folders in ${this.root} could not be read: ${r.detail}`);
      return;
    }
    this.state(true);
  }

  private async checkRoot(): Promise<void> {
    if (this.remote.kind === 'local') {
      let isDir: boolean;
      try {
        isDir = (await stat(this.root)).isDirectory();
      } catch {
        throw new LipsyncError('remote-missing', `The folder ${this.root} does not exist.`, {
          fix: 'Check the path (is the disk mounted?), or create the folder.',
        });
      }
      if (!isDir) throw new LipsyncError('remote-not-dir', `${this.root} is not a folder.`);
      return;
    }
    const res = await runScript(this.remote, this.ssh, requireRootScript(this.root), { timeoutMs: 120_000 });
    if (res.code !== 0 || res.timedOut) throw scriptFailure(this.remote, this.ssh, res, this.root);
  }
}
