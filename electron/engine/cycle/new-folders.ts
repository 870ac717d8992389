/**
 * New local folders, sent whole (rules T1 and T2 of docs/sync-semantics.md, "New
 * folders"): collected by LocalCollector instead of being walked, then sent by recursive
 * rsync runs into a staging folder on the server, listed there, moved into place under
 * the server lock, and recorded. What cannot go this way is walked and sent path by path.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Entry } from '../types.js';
import type { StateDb } from '../state/db.js';
import { ancestorIn, parentOf } from '../dirty.js';
import { comparePaths } from '../scan.js';
import { rsyncPushTrees, type PushResult } from '../remote/rsync.js';
import { INCOMING_DIR } from '../../../shared/layout.js';
import { isIgnoredPath } from '../excludes.js';
import { statRemote } from '../remote/stat.js';
import { traced } from '../trace.js';
import { newTrashDir } from '../versions.js';
import { LocalAncestors } from '../safe-fs.js';
import { baseHasEntries, nowNs, type CycleContext, type CycleState } from './context.js';
import { anchoredRsyncPattern, landedAsSent } from './compare.js';
import { entryFor, racyHash } from './base-rows.js';
import { listIntoScratch } from './collect-remote.js';
import { failedFiles } from './transfer.js';
import { treeRuns } from './tree-runs.js';

/**
 * rsync runs of a folder push at a time (see tree-runs.ts). One: the first sync of 1M files
 * took 85.1 s with one run at a time and 95.7 s with two (2026-12-08, bench/first-sync.mjs on
 * loopback): two receivers creating files on the server slow each other more than they gain.
 */
const PUSH_RUNS = 1;

/** Rows recorded at a time after a folder push (see recordTrees). */
const RECORD_PAGE = 1000;

export class NewFolders {
  private readonly db: StateDb;
  /** New local folders to send whole, each with everything below it (see pushNewTrees). */
  private readonly roots: string[] = [];
  /** The same, as a set: what collecting skips below. */
  readonly pending = new Set<string>();
  /** Set while a folder that could not be sent whole is walked path by path. */
  private treesOff = false;

  /** `walkLocal`: walks a local folder path by path (LocalCollector.scanLocalTree). */
  constructor(
    private readonly ctx: CycleContext,
    private readonly s: CycleState,
    private readonly walkLocal: (path: string) => Promise<void>,
  ) {
    this.db = ctx.db;
  }

  /**
   * Takes the new local folder `path` (no base entry) for pushNewTrees, instead of
   * walking it now: when this pair sends, has a staging prefix, its excludes have an
   * rsync equivalent, and the base knows nothing below the folder.
   */
  deferTree(path: string): boolean {
    if (this.treesOff || this.ctx.direction === 'receive-only' || !this.ctx.stagingPrefix) return false;
    if (!this.ctx.excluder.rsyncRules?.()) return false;
    if (baseHasEntries(this.db, this.s) && this.db.hasDescendants(path)) return false;
    this.roots.push(path);
    this.pending.add(path);
    return true;
  }

  /**
   * Sends the new local folders found by collect, each whole (rules T1 and T2 of
   * docs/sync-semantics.md, "New folders"): recursive rsync runs (TREE_GROUPS at most) into a
   * staging folder in the server's .lipsync/incoming, a listing of what arrived there,
   * then, under the server lock, each folder still absent on the server is moved into
   * place with one rename, and the base records what arrived. Nothing on the server is
   * replaced or deleted, and a folder appears there only once complete. A folder that
   * cannot go this way (it exists on the server by now, its parent does not, something
   * excluded or unnamable arrived, the rename or the rsync run failed) is walked and
   * sent path by path like every other change; its staged copy is removed.
   */
  async pushNewTrees(): Promise<void> {
    const roots = this.roots.splice(0).sort(comparePaths);
    this.pending.clear();
    if (!roots.length) return;
    const fallback = await this.sendTrees(roots);
    if (!fallback.length) return;
    this.treesOff = true;
    try {
      for (const t of fallback.sort(comparePaths)) {
        this.db.candAdd([t]);
        await this.walkLocal(t);
      }
    } finally {
      this.treesOff = false;
    }
  }

  /**
   * pushNewTrees' transfers, renames and records; returns the folders left to send path
   * by path. The folders go in up to TREE_GROUPS rsync runs, PUSH_RUNS at a time
   * (tree-runs.ts), and what arrived in one run is listed, moved and recorded while later
   * ones are sent.
   */
  private async sendTrees(roots: string[]): Promise<string[]> {
    const rules = this.ctx.excluder.rsyncRules?.() ?? null;
    const prefix = this.ctx.stagingPrefix;
    if (!rules || !prefix) return roots;
    this.ctx.checkPaused();
    // Each folder must be absent on the server and its parent a folder there.
    const parents = [...new Set(roots.map(parentOf).filter((p) => p !== ''))];
    const before = await traced(`stat ${roots.length + parents.length} folders on the server`, () =>
      statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, [...roots, ...parents], this.ctx.caps),
    );
    const parentOk = new Map(parents.map((p, i) => [p, before[roots.length + i]?.kind === 'dir']));
    const fallback: string[] = [];
    const send: string[] = [];
    roots.forEach((r, i) => {
      const p = parentOf(r);
      if (before[i] || (p !== '' && !parentOk.get(p))) fallback.push(r);
      else send.push(r);
    });

    fallback.push(
      ...(await treeRuns(this.ctx, send, PUSH_RUNS, {
        stage: () => `${INCOMING_DIR}/${prefix}-${randomBytes(6).toString('hex')}`,
        send: (group, staging, progress) =>
          traced(`rsync push ${group.length} new folders`, () =>
            rsyncPushTrees({
              localRoot: this.ctx.localRoot,
              remote: this.ctx.remote,
              ssh: this.ctx.ssh,
              paths: group,
              stagingDir: staging,
              // Files still being written are left out; each is sent once closed (rule W1).
              excludes: [...rules, ...group.flatMap((g) => this.ctx.heldBelow?.(g) ?? []).map(anchoredRsyncPattern)],
              bwLimitKBps: this.ctx.bwLimitKBps || undefined,
              compress: this.ctx.compress?.() ?? false,
              // The total grows as rsync walks the folders (no walk of ours came first).
              onProgress: progress,
            }),
          ),
        finish: (group, staging, res) => this.finishTrees(group, staging, res),
        clear: (staging) => this.ctx.ops.clearIncoming(staging.slice(INCOMING_DIR.length + 1)).catch(() => undefined),
      })),
    );
    return fallback;
  }

  /**
   * After one rsync run of pushNewTrees into `staging`: lists what arrived (while the
   * server lock is being taken), moves each folder into place under the lock (when still
   * absent there) and records it.
   * Returns the folders left to send path by path.
   */
  private async finishTrees(group: string[], staging: string, res: PushResult): Promise<string[]> {
    let failed: Set<string>;
    try {
      failed = failedFiles(this.ctx.totals, res);
    } catch {
      // The run failed as a whole: path by path, which reports the error as usual.
      return group;
    }
    const fallback: string[] = [];
    // What arrived, into the scratch table; a folder holding anything the excludes
    // match (made after the run began) or a name that is not UTF-8 goes path by path.
    // The server lock is taken meanwhile (the listing reads only our staging folder).
    this.ctx.checkPaused();
    const groupSet = new Set(group);
    const bad = new Set<string>();
    const listed = traced('list the staged folders', () =>
      listIntoScratch(this.ctx, join(this.ctx.remote.path, staging), '', { recursive: true }, (e) => {
        const root = ancestorIn(e.path, groupSet);
        if (root === null) return false; // a parent made in the staging folder
        if (e.path.includes('\uFFFD') || isIgnoredPath(e.path, e.kind === 'dir', this.ctx.excluder)) bad.add(root);
        return true;
      }),
    ).then(
      () => true,
      () => false,
    );

    // Into place, under the lock, each folder that is still absent on the server.
    const moved = new Set<string>();
    try {
      await this.ctx.withRemoteLock(async () => {
        if (!(await listed)) {
          fallback.push(...group);
          return;
        }
        const send = group.filter((r) => {
          if (bad.has(r)) fallback.push(r);
          return !bad.has(r);
        });
        if (!send.length) return;
        this.ctx.expectEcho?.(send);
        const now = await statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, send, this.ctx.caps);
        const free = send.filter((r, i) => {
          if (now[i]) fallback.push(r);
          return !now[i];
        });
        if (!free.length) return;
        const results = await traced(`move ${free.length} new folders into place`, () =>
          this.ctx.ops.rename(
            free.map((r) => ({ from: `${staging}/${r}`, to: r })),
            newTrashDir(),
          ),
        );
        results.forEach((m, i) => {
          if (m.ok) moved.add(free[i]!);
          else fallback.push(free[i]!);
        });
      });
      if (moved.size) await traced('record the new folders', () => this.recordTrees(moved, res, failed));
    } finally {
      await listed; // the scratch table is not read by another listing while this one runs
      this.ctx.expectEcho?.(null);
    }
    return fallback;
  }

  /**
   * The base of every path that arrived in the moved folders (the rscan rows): the
   * local state when it still is what arrived; else what arrived, for both sides, so
   * the local change since is found and sent next (the path is looked at again).
   * Files rsync could not send become candidates of this cycle.
   */
  private async recordTrees(moved: Set<string>, res: PushResult, failed: Set<string>): Promise<void> {
    const sent: string[] = [];
    let files = 0;
    let after = '';
    for (;;) {
      // Small pages, and a turn of the event loop between them: the next rsync run's
      // output is read meanwhile (a full pipe would stall it).
      const page = this.db.rscanPage(after, RECORD_PAGE);
      if (!page.length) break;
      await new Promise((r) => setImmediate(r));
      after = page[page.length - 1]!.path;
      const syncedAtNs = nowNs();
      const rows: Entry[] = [];
      const view = new LocalAncestors(this.ctx.localRoot); // the folders above, once per page
      for (const r of page) {
        if (ancestorIn(r.path, moved) === null) continue;
        const l = view.lstat(r.path);
        if (
          l &&
          l.kind === r.kind &&
          landedAsSent(l, r) &&
          (l.kind === 'dir' || (l.mode & 0o111) === (r.mode & 0o111))
        ) {
          rows.push(entryFor(r.path, l, r, await racyHash(this.ctx.localRoot, r.path, l, syncedAtNs), syncedAtNs));
        } else {
          rows.push({
            ...r,
            path: r.path,
            ino: l?.ino ?? 0n,
            hash: null,
            syncedAtNs,
            remoteSize: r.size,
            remoteMtimeNs: r.mtimeNs,
            remoteIno: r.ino,
            remoteMode: r.mode,
          });
          this.ctx.requeueLocalTree(r.path);
        }
        if (r.kind !== 'dir') {
          files++;
          if (sent.length < 1000) sent.push(r.path);
        }
      }
      this.db.upsert(rows);
    }
    const retry = [...failed].filter((f) => ancestorIn(f, moved) !== null);
    if (retry.length) this.db.candAdd(retry);
    this.ctx.totals.filesSent += files;
    this.ctx.totals.bytesSent += res.literalBytes;
    if (files) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'push',
        msg: `sent ${files} file${files === 1 ? '' : 's'} in ${moved.size} new folder${moved.size === 1 ? '' : 's'} (${res.literalBytes} bytes of data)`,
        paths: sent,
        bytes: res.literalBytes,
      });
    }
  }
}
