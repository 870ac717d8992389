/**
 * Collecting the local side's candidates: the paths a snapshot of local changes names
 * (events, a clean-stop listing, a rescan), compared with the base. A new folder is left
 * for NewFolders (sent whole); a path moved here whose inode the base knows is moved on
 * the server at once (moveRemote), when the server still has it as the base knows it.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { LocalStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import type { DirtySnapshot } from '../dirty.js';
import { isUnder, isUnderAny, joinPath } from '../dirty.js';
import { localChangedSince } from '../since.js';
import { compareDir, sameAsEntry, type ScanChange } from '../scan.js';
import { statRemote } from '../remote/stat.js';
import { newTrashDir } from '../versions.js';
import { lstatInRoot } from '../safe-fs.js';
import { baseHasEntries, type CycleContext, type CycleState } from './context.js';
import { remoteChanged, sizeOf } from './compare.js';
import { localUnchanged } from './base-rows.js';
import type { NewFolders } from './new-folders.js';

export class LocalCollector {
  private readonly db: StateDb;

  constructor(
    private readonly c: CycleContext,
    private readonly s: CycleState,
    private readonly trees: NewFolders,
  ) {
    this.db = c.db;
  }

  async collectLocal(snap: DirtySnapshot): Promise<void> {
    if (snap.full) return this.scanLocalTree('');
    if (snap.since !== null) {
      // After a clean stop: only what find says changed since (else everything).
      const changed = await (this.s.localSince ?? localChangedSince(this.c.localRoot, Number(snap.since)));
      this.s.localSince = null;
      this.s.sinceReport.push(changed && !changed.full ? `${sizeOf(changed)} here` : 'everything here');
      if (!changed || changed.full) return this.scanLocalTree('');
      await this.collectLocal(changed);
    }
    // A directory compared inside a tree walk of this snapshot needs no second look.
    const walked = new Set<string>();
    for (const t of snap.trees) if (await this.checkLocalPath(t, true)) walked.add(t);
    for (const [dir, names] of snap.dirs) {
      if (isUnderAny(dir, walked) || isUnderAny(dir, this.trees.pending)) continue;
      if (names === 'all') {
        if (!this.c.excluder.ignores(dir, true)) await this.scanLocalDir(dir, true, true);
      } else {
        for (const n of names) await this.checkLocalPath(joinPath(dir, n));
      }
    }
  }

  async scanLocalTree(start: string): Promise<void> {
    const stack = [start];
    while (stack.length) {
      const dir = stack.pop()!;
      // The start's folders above are checked (N5); below it, each folder was found by a walk.
      for (const d of await this.scanLocalDir(dir, false, dir === start)) stack.push(d);
    }
  }

  /** Compares one local directory with the base; returns subdirectories to descend into. */
  private async scanLocalDir(dir: string, recurseNew: boolean, checkAncestors = false): Promise<string[]> {
    const { changes, subdirs, skipped } = await compareDir(
      this.c.localRoot,
      this.db,
      dir,
      this.c.excluder,
      checkAncestors,
    );
    for (const s of skipped)
      this.warn({ kind: 'permission-denied', message: `Skipped ${s.path}: ${s.reason}.`, files: [s.path] });
    const moved = new Set<string>();
    const outer = this.s.candBatch; // a move found below may scan (and batch) a tree of its own
    this.s.candBatch = [];
    try {
      for (const ch of changes) if (await this.localChange(ch)) moved.add(ch.path);
    } finally {
      const batch = this.s.candBatch;
      this.s.candBatch = outer;
      this.db.candAdd(batch);
    }
    if (recurseNew) {
      for (const ch of changes) {
        if (ch.type !== 'deleted' && ch.stat.kind === 'dir' && !moved.has(ch.path)) await this.scanLocalTree(ch.path);
      }
      return [];
    }
    return subdirs.filter((d) => !moved.has(d));
  }

  /**
   * Checks one local path against the base. A directory new to the base is walked whole;
   * with `tree`, any directory is (its contents may have changed: moved in, or a move
   * applied on the server that leaves edits below it to find). Returns whether the path's
   * tree was walked, so the caller can skip directories below it.
   */
  private async checkLocalPath(path: string, tree = false): Promise<boolean> {
    const stat = this.lstatL(path);
    if (this.c.excluder.ignores(path, stat?.kind === 'dir')) return false;
    const entry = this.db.get(path);
    let walk = tree;
    if (!stat && entry) await this.localChange({ type: 'deleted', path, entry });
    else if (stat && !entry) {
      if (!(await this.localChange({ type: 'added', path, stat }))) walk = true;
      else if (this.trees.pending.has(path)) return true; // sent whole later: nothing to look at below
    } else if (stat && entry && !(await localUnchanged(this.c.localRoot, path, stat, entry))) {
      await this.localChange({ type: 'modified', path, stat, entry });
      if (entry.kind !== 'dir') walk = true;
    }
    if (!walk || stat?.kind !== 'dir') return false;
    await this.scanLocalTree(path);
    return true;
  }

  /** Records one local change as a candidate; returns true when it was a move, done remotely already. */
  private async localChange(ch: ScanChange): Promise<boolean> {
    this.s.localCandidates++;
    if (ch.type === 'deleted') {
      this.addCandidate(ch.path);
      if (ch.entry.kind === 'dir') this.db.candAddDescendants(ch.path);
      return false;
    }
    if (ch.type === 'added' && this.c.direction !== 'receive-only' && baseHasEntries(this.db, this.s)) {
      const from = await this.localMovedFrom(ch.path, ch.stat);
      if (from !== null && (await this.moveRemote(from, ch.path, ch.stat))) return true;
    }
    // A new folder is sent whole (pushNewTrees), not walked here.
    if (ch.type === 'added' && ch.stat.kind === 'dir' && this.trees.deferTree(ch.path)) return true;
    this.addCandidate(ch.path);
    return false;
  }

  private addCandidate(path: string): void {
    if (this.s.candBatch) this.s.candBatch.push(path);
    else this.db.candAdd([path]);
  }

  /** A new local path whose inode the base knows at a path that is gone locally was moved there. */
  private async localMovedFrom(path: string, stat: LocalStat): Promise<string | null> {
    for (const cand of this.db.byInode(stat.ino)) {
      if (cand.path === path || cand.kind !== stat.kind || isUnder(path, cand.path)) continue;
      // A renamed file keeps its size and mtime; a new file that got a deleted one's inode
      // number does not (an edit with the move is then synced as a deletion and a creation).
      if (stat.kind === 'file' && (cand.size !== stat.size || cand.mtimeNs !== stat.mtimeNs)) continue;
      if (this.c.excluder.ignores(cand.path, cand.kind === 'dir')) continue;
      const now = this.lstatL(cand.path);
      if (now && now.ino === cand.ino) continue; // a hard link, not a move
      return cand.path;
    }
    return null;
  }

  /**
   * Applies a local move on the server, if the server still has the source as
   * the base knows it and nothing at the target. Returns false when it did not
   * (the paths are then synced as a deletion and a creation).
   */
  private async moveRemote(from: string, to: string, stat: LocalStat): Promise<boolean> {
    const base = this.db.get(from);
    if (!base) return false;
    const [rFrom, rTo] = await statRemote(this.c.remote, this.c.ssh, this.c.remote.path, [from, to], this.c.caps);
    if (!rFrom || rTo || remoteChanged(rFrom, base)) return false;
    this.c.checkPaused();
    const results = await this.c.withRemoteLock(() => this.c.ops.rename([{ from, to }], newTrashDir()));
    if (!results[0]?.ok) return false;
    this.db.renameTree(from, to);
    this.c.totals.renamed++;
    this.c.log.write({
      pair: this.c.pair,
      level: 'info',
      event: 'rename',
      msg: `moved ${from} → ${to} on the server`,
      from,
      to,
    });
    // The moved path itself may have changed too (an edit around the move): decide it normally.
    const entry = this.db.get(to);
    if (!entry || !sameAsEntry(stat, entry)) this.db.candAdd([to]);
    if (stat.kind === 'dir') await this.scanLocalTree(to);
    return true;
  }

  /** lstat for decisions: absent when a folder above the path is not one (N5). */
  private lstatL(path: string): LocalStat | null {
    return lstatInRoot(this.c.localRoot, path);
  }

  private warn(w: ErrorInfo): void {
    this.c.totals.warnings.push(w);
  }
}
