/**
 * Collecting the local side's candidates: the paths a snapshot of local changes names
 * (events, a clean-stop listing, a rescan), compared with the base. A new folder is left
 * for NewFolders (sent whole); a path moved here is left for Moves (moved on the server
 * while acting). Nothing here writes either side.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { LocalStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import type { DirtySnapshot } from '../dirty.js';
import { isUnderAny, joinPath } from '../dirty.js';
import { localChangedSince } from '../since.js';
import { compareDir, type ScanChange } from '../scan.js';
import { lstatInRoot } from '../safe-fs.js';
import { baseHasEntries, type CycleContext, type CycleState } from './context.js';
import { sizeOf } from './compare.js';
import { localUnchanged } from './base-rows.js';
import type { NewFolders } from './new-folders.js';
import type { Moves } from './moves.js';

export class LocalCollector {
  private readonly db: StateDb;

  constructor(
    private readonly ctx: CycleContext,
    private readonly s: CycleState,
    private readonly trees: NewFolders,
    private readonly moves: Moves,
  ) {
    this.db = ctx.db;
  }

  async collectLocal(snap: DirtySnapshot): Promise<void> {
    if (snap.full) return this.scanLocalTree('');
    if (snap.since !== null) {
      // After a clean stop: only what find says changed since (else everything).
      const changed = await (this.s.localSince ?? localChangedSince(this.ctx.localRoot, Number(snap.since)));
      this.s.localSince = null;
      this.s.sinceReport.push(changed && !changed.full ? `${sizeOf(changed)} here` : 'everything here');
      if (!changed || changed.full) return this.scanLocalTree('');
      await this.collectLocal(changed);
    }
    // A directory compared inside a tree walk of this snapshot needs no second look.
    const walked = new Set<string>();
    for (const t of snap.trees) if (await this.checkLocalPath(t, true)) walked.add(t);
    for (const [dir, names] of snap.dirs) {
      // Below a new folder sent whole, or where a planned move goes: looked at after that.
      if (isUnderAny(dir, walked) || isUnderAny(dir, this.trees.pending) || this.moves.underPlannedTarget(dir))
        continue;
      if (names === 'all') {
        if (!this.ctx.excluder.ignores(dir, true)) await this.scanLocalDir(dir, true, true);
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
      this.ctx.localRoot,
      this.db,
      dir,
      this.ctx.excluder,
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
    if (this.moves.underPlannedTarget(path)) return true; // looked at once the move is made
    const stat = this.lstatL(path);
    if (this.ctx.excluder.ignores(path, stat?.kind === 'dir')) return false;
    const entry = this.db.get(path);
    let walk = tree;
    if (!stat && entry) await this.localChange({ type: 'deleted', path, entry });
    else if (stat && !entry) {
      if (!(await this.localChange({ type: 'added', path, stat }))) walk = true;
      // Sent whole, or moved, later: nothing to look at below it now.
      else if (this.trees.pending.has(path) || this.moves.targets.has(path)) return true;
    } else if (stat && entry && !(await localUnchanged(this.ctx.localRoot, path, stat, entry))) {
      await this.localChange({ type: 'modified', path, stat, entry });
      if (entry.kind !== 'dir') walk = true;
    }
    if (!walk || stat?.kind !== 'dir') return false;
    await this.scanLocalTree(path);
    return true;
  }

  /**
   * Records one local change as a candidate; returns true when the path was left for
   * later (a planned move, a new folder sent whole): nothing below it is looked at now.
   */
  private async localChange(ch: ScanChange): Promise<boolean> {
    this.s.localCandidates++;
    if (ch.type === 'deleted') {
      this.addCandidate(ch.path);
      if (ch.entry.kind === 'dir') this.db.candAddDescendants(ch.path);
      return false;
    }
    if (ch.type === 'added' && this.ctx.direction !== 'receive-only' && baseHasEntries(this.db, this.s)) {
      if (await this.moves.planHere(ch.path, ch.stat)) return true;
    }
    return this.added(ch.path, ch.stat.kind);
  }

  /** A path new to the base, not a move: a new folder is sent whole (pushNewTrees), not walked here. */
  private added(path: string, kind: LocalStat['kind']): boolean {
    if (kind === 'dir' && this.trees.deferTree(path)) return true;
    this.addCandidate(path);
    return false;
  }

  /** A planned move that did not hold when carried out: the new path is synced as a creation. */
  async addedAfterAll(path: string, stat: LocalStat): Promise<void> {
    this.s.localCandidates++;
    if (!this.added(path, stat.kind) && stat.kind === 'dir') await this.scanLocalTree(path);
  }

  private addCandidate(path: string): void {
    if (this.s.candBatch) this.s.candBatch.push(path);
    else this.db.candAdd([path]);
  }

  /** lstat for decisions: absent when a folder above the path is not one (N5). */
  private lstatL(path: string): LocalStat | null {
    return lstatInRoot(this.ctx.localRoot, path);
  }

  private warn(w: ErrorInfo): void {
    this.ctx.totals.warnings.push(w);
  }
}
