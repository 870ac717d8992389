/**
 * Collecting the server's candidates: the paths a snapshot of the server's changes names
 * (its watcher's feed, a clean-stop listing, a rescan), listed into the scratch table and
 * compared with the base there. A folder new on the server that was moved there is left
 * for Moves (moved here while acting). Nothing here writes either side.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { RemoteEntry } from '../types.js';
import type { StateDb } from '../state/db.js';
import type { DirtySnapshot } from '../dirty.js';
import { DirtySet, isUnderAny, joinPath } from '../dirty.js';
import { listChangedSince } from '../remote/watch.js';
import { listRemoteBatches, type ListOptions } from '../remote/list.js';
import { statRemote } from '../remote/stat.js';
import { LipsyncError } from '../errors.js';
import type { CycleContext, CycleState } from './context.js';
import type { Moves } from './moves.js';
import type { NewRemoteFolders } from './new-remote-folders.js';
import { sizeOf } from './compare.js';

export class RemoteCollector {
  private readonly db: StateDb;

  constructor(
    private readonly ctx: CycleContext,
    private readonly s: CycleState,
    private readonly moves: Moves,
    private readonly trees?: NewRemoteFolders,
  ) {
    this.db = ctx.db;
  }

  async collectRemote(snap: DirtySnapshot): Promise<void> {
    if (snap.full) {
      await this.scanRemote('', true);
      return;
    }
    if (snap.since !== null && !this.ctx.remoteSincePolled) {
      // After a clean stop: what changed on the server since our marker (else everything).
      const found = await (this.s.remoteSince ?? this.remoteChangedSince(snap.since));
      this.s.remoteSince = null;
      this.s.sinceReport.push(found ? `${sizeOf(found)} on the server` : 'everything on the server');
      if (!found) {
        await this.scanRemote('', true);
        return;
      }
      await this.collectRemote(found);
    }
    // A directory listed inside a tree of this snapshot needs no second listing.
    const walked = new Set<string>();
    for (const t of snap.trees) {
      if (await this.moves.planFromServer(t)) continue;
      this.db.candAdd([t]);
      await this.scanRemote(t, true);
      walked.add(t);
    }
    for (const [dir, names] of snap.dirs) {
      // Listed in a tree already, or where a planned move goes (listed once it is made).
      if (names === 'all' && (isUnderAny(dir, walked) || this.moves.underPlannedTarget(dir))) continue;
      if (names === 'all') {
        this.db.candAdd(dir === '' ? [] : [dir]);
        await this.scanRemote(dir, false);
      } else {
        const paths = names.map((n) => joinPath(dir, n)).filter((p) => !this.ctx.excluder.ignores(p, false));
        this.db.candAdd(paths);
        // A name the server's feed could not decode (not UTF-8): its folder's listing,
        // which reads the bytes, finds it and warns (N3).
        if (names.some((n) => n.includes('\uFFFD')) && !this.ctx.excluder.ignores(dir, true))
          await this.scanRemote(dir, false);
      }
    }
  }

  /** What changed on the server since the marker `markerId`; null when it must be compared whole. */
  async remoteChangedSince(markerId: string): Promise<DirtySnapshot | null> {
    if (!this.ctx.caps.gnuFind) return null;
    const changed = new DirtySet();
    const r = await listChangedSince(
      this.ctx.remote,
      this.ctx.ssh,
      this.ctx.remote.path,
      markerId,
      this.ctx.excluder,
      (b) => {
        for (const ch of b) {
          if (ch.isDir) changed.markDir(ch.path);
          changed.addPath(ch.path);
        }
      },
    );
    const found = changed.take();
    return r.result === 'ok' && !found.full ? found : null;
  }

  /** Lists a remote subtree (or one directory) into the scratch table and adds what differs from the base. */
  async scanRemote(start: string, recursive: boolean): Promise<void> {
    try {
      await listIntoScratch(this.ctx, this.ctx.remote.path, start, {
        recursive,
        excluder: this.ctx.excluder,
        onBadName: (path) => {
          this.warn(notUtf8OnServer(path));
          this.trees?.badName(path);
        },
      });
      // New server folders are taken out of the listing, to be pulled whole (T3).
      if (recursive) this.trees?.deferFromScan();
    } catch (e) {
      if (!(await this.vanishedRemoteFolder(start, e))) throw e;
      // A folder named by a hint (an event, a listing) that is gone by now: what the base
      // holds below it becomes a candidate, decided like any other.
      this.db.rscanClear();
    }
    this.db.candFromRemoteScan(start, recursive);
  }

  /** Did listing `start` fail because that folder (not the root) is no longer a folder on the server? */
  private async vanishedRemoteFolder(start: string, e: unknown): Promise<boolean> {
    if (start === '' || !(e instanceof LipsyncError)) return false;
    if (e.kind !== 'remote-missing' && e.kind !== 'remote-not-dir') return false;
    // Throws when the root itself is gone: that is never read as "everything deleted".
    const [st] = await statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, [start], this.ctx.caps);
    return st?.kind !== 'dir';
  }

  private warn(w: ErrorInfo): void {
    this.ctx.totals.warnings.push(w);
  }
}

/**
 * N3: a name on the server that is not valid UTF-8 is skipped (rsync runs without
 * --iconv; the path cannot be named in the list rsync reads), with this warning.
 * `path` is escaped (escapeName: `caf\xe9.txt`).
 */
export function notUtf8OnServer(path: string): ErrorInfo {
  return {
    kind: 'permission-denied',
    message: `Skipped ${path} on the server: its name is not valid UTF-8; rename it there to sync it.`,
    fix: 'Rename it on the server to a UTF-8 name (for example `convmv -f latin1 -t utf8 --notest NAME`); lipsync never converts names.',
    files: [path],
  };
}

/**
 * Streams a listing of `start` below the server folder `root` into the scratch table
 * (emptied first), in batches; entries for which `keep` says false are left out.
 */
export async function listIntoScratch(
  c: Pick<CycleContext, 'db' | 'remote' | 'ssh' | 'caps'>,
  root: string,
  start: string,
  opts: ListOptions & { recursive: boolean },
  keep: (e: RemoteEntry) => boolean = () => true,
): Promise<void> {
  c.db.rscanClear();
  let buf: RemoteEntry[] = [];
  for await (const batch of listRemoteBatches(c.remote, c.ssh, root, start, c.caps, opts)) {
    for (const e of batch) if (keep(e)) buf.push(e);
    if (buf.length >= 5000) {
      c.db.rscanInsert(buf);
      buf = [];
    }
  }
  c.db.rscanInsert(buf);
}
