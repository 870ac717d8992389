/**
 * Moves: a path moved on one side is moved on the other, not sent again and deleted.
 *
 * Found while collecting, which stays read-only:
 * - planHere: a local path new to the base whose inode the base knows at a path gone
 *   here → to be moved on the server (whether the server still has that path as the
 *   base knows it, and nothing at the new one, is checked once, when it is made);
 * - planFromServer: a server folder new to the base whose server inode the base knows at
 *   a path gone there, while this computer still has it as the base knows it → to be
 *   moved here.
 *
 * Carried out (carryOut) when the cycle starts acting, after the mass-delete check,
 * which counts what a planned move takes from its old path as moved, not deleted
 * (underPlannedSource). Each move is checked when it is carried out (the server's
 * side under the server lock, as every server write): one that does not hold is synced
 * as a deletion and a creation, and the mass-delete check runs again over what that and
 * the look below the moved folders added (Cycle.execute). A move found while acting (in
 * a new folder that could not be sent whole and is walked path by path) is made at once.
 */
import type { LocalStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import { ancestorIn, isUnder, isUnderAny } from '../dirty.js';
import { sameAsEntry } from '../scan.js';
import { statRemote } from '../remote/stat.js';
import { newTrashDir } from '../versions.js';
import { SymlinkedParentError, lstatInRoot, renameInRoot } from '../safe-fs.js';
import type { CycleContext } from './context.js';
import { remoteChanged } from './compare.js';

/** A move found while collecting; `on`: the side it is still to be made on. */
export type PlannedMove =
  { on: 'server'; from: string; to: string; stat: LocalStat } | { on: 'here'; from: string; to: string; ino: bigint };

/** What carrying out a move needs from the collectors: a look below a moved folder, and the fallback. */
export interface MoveHooks {
  /** Compares the local tree at `path` with the base (after a move here or on the server). */
  scanLocalTree(path: string): Promise<void>;
  /** Lists the server's tree at `path` and compares it with the base. */
  scanServerTree(path: string): Promise<void>;
  /** A local path new to the base that was not moved after all: what collecting does with a new path. */
  addedHere(path: string, stat: LocalStat): Promise<void>;
}

export class Moves {
  private readonly db: StateDb;
  private readonly planned: PlannedMove[] = [];
  /** Where planned moves go: nothing below them is looked at until the move is made. */
  readonly targets = new Set<string>();
  private readonly sources = new Set<string>();
  /** Set once carryOut started: a move found from then on is made at once. */
  private acting = false;

  constructor(
    private readonly ctx: CycleContext,
    private readonly hooks: MoveHooks,
  ) {
    this.db = ctx.db;
  }

  /** Whether `path` is, or is below, the old path of a move not yet carried out (not a deletion). */
  underPlannedSource(path: string): boolean {
    return isUnderAny(path, this.sources);
  }

  /** Whether `path` is, or is below, where a planned move goes (looked at once it is made). */
  underPlannedTarget(path: string): boolean {
    return ancestorIn(path, this.targets) !== null;
  }

  /**
   * The old paths of the planned moves that are not below another one: what the
   * mass-delete check leaves out of its count.
   */
  topSources(): string[] {
    return [...this.sources].filter((s) => !isUnderAny(s, new Set([...this.sources].filter((o) => o !== s))));
  }

  /**
   * A local path new to the base: plans its move on the server if it was moved here.
   * The server is looked at only when the move is made (under the lock), not twice.
   */
  async planHere(to: string, stat: LocalStat): Promise<boolean> {
    const from = this.movedHereFrom(to, stat);
    if (from === null) return false;
    const m = { on: 'server' as const, from, to, stat };
    if (this.acting) await this.ctx.withRemoteLock(async () => this.moveOnServer([m]));
    else this.plan(m);
    return true;
  }

  /** A folder new on the server: plans its move here if it was moved there. */
  async planFromServer(to: string): Promise<boolean> {
    if (!this.ctx.caps.gnuFind || this.ctx.direction === 'send-only') return false;
    const [rTo] = await this.statServer([to]);
    if (!rTo || rTo.ino === null) return false;
    for (const cand of this.db.byRemoteInode(rTo.ino)) {
      if (cand.path === to || cand.kind !== rTo.kind || isUnder(to, cand.path)) continue;
      const [rFrom] = await this.statServer([cand.path]);
      if (rFrom && rFrom.ino === rTo.ino) continue; // hard link
      if (!this.hereStillAsBase(cand.path, to)) return false;
      const m = { on: 'here' as const, from: cand.path, to, ino: rTo.ino };
      if (this.acting) await this.moveHere(m);
      else this.plan(m);
      return true;
    }
    return false;
  }

  /**
   * Makes the planned moves, in the order found (a move below a moved folder comes after
   * it). Returns whether any was planned: what they brought into the candidates (a look
   * below each moved folder, a move that fell back) has not been through the mass-delete
   * check yet.
   */
  async carryOut(): Promise<boolean> {
    this.acting = true;
    const planned = this.planned.splice(0);
    this.sources.clear();
    this.targets.clear();
    if (!planned.length) return false;
    this.ctx.checkPaused();
    const server = planned.filter((m) => m.on === 'server');
    if (server.length) await this.ctx.withRemoteLock(async () => this.moveOnServer(server));
    for (const m of planned) if (m.on === 'here') await this.moveHere(m);
    return true;
  }

  private plan(m: PlannedMove): void {
    this.planned.push(m);
    this.sources.add(m.from);
    this.targets.add(m.to);
  }

  /** Under the server lock: each move checked again, then one rename script per move. */
  private async moveOnServer(moves: Extract<PlannedMove, { on: 'server' }>[]): Promise<void> {
    const hooks = this.hooks;
    for (const m of moves) {
      // Found again against the base as it is now: an earlier move may have renamed it.
      const now = this.lstatL(m.to);
      const from = now && now.ino === m.stat.ino ? this.movedHereFrom(m.to, now) : null;
      if (now && from !== null && (await this.serverStillAsBase(from, m.to))) {
        const results = await this.ctx.ops.rename([{ from, to: m.to }], newTrashDir());
        if (results[0]?.ok) {
          this.moved(from, m.to, 'on the server');
          // The old path's candidates (found gone while collecting) are now the new path's, looked at below.
          if (now.kind === 'dir') this.db.candDropTree(from);
          // The moved path itself may have changed too (an edit around the move): decide it normally.
          const entry = this.db.get(m.to);
          if (!entry || !sameAsEntry(now, entry)) this.db.candAdd([m.to]);
          if (now.kind === 'dir') await hooks.scanLocalTree(m.to);
          continue;
        }
      }
      // Not moved: synced as a deletion of the old path and a creation of the new one.
      this.addOldPath(m.from);
      if (now) await hooks.addedHere(m.to, now);
    }
  }

  private async moveHere(m: Extract<PlannedMove, { on: 'here' }>): Promise<void> {
    const hooks = this.hooks;
    const base = this.db.get(m.from);
    if (base && base.remoteIno === m.ino && this.hereStillAsBase(m.from, m.to)) {
      try {
        // Never through a symlink (N5): a folder above either path that is not one refuses the move.
        renameInRoot(this.ctx.localRoot, m.from, m.to, true);
        this.moved(m.from, m.to, 'here (moved on the server)');
        await hooks.scanServerTree(m.to);
        this.db.candAdd([m.to]);
        return;
      } catch (e) {
        if (!(e instanceof SymlinkedParentError)) throw e;
      }
    }
    // Not moved: the server's new folder is fetched, the old path decided like any other.
    this.addOldPath(m.from);
    this.db.candAdd([m.to]);
    await hooks.scanServerTree(m.to);
  }

  private moved(from: string, to: string, where: string): void {
    this.db.renameTree(from, to);
    this.ctx.totals.renamed++;
    this.ctx.log.write({
      pair: this.ctx.pair,
      level: 'info',
      event: 'rename',
      msg: `moved ${from} → ${to} ${where}`,
      from,
      to,
    });
  }

  private addOldPath(path: string): void {
    this.db.candAdd([path]);
    this.db.candAddDescendants(path);
  }

  /** A new local path whose inode the base knows at a path that is gone locally was moved there. */
  private movedHereFrom(path: string, stat: LocalStat): string | null {
    for (const cand of this.db.byInode(stat.ino)) {
      if (cand.path === path || cand.kind !== stat.kind || isUnder(path, cand.path)) continue;
      // A renamed file keeps its size and mtime; a new file that got a deleted one's inode
      // number does not (an edit with the move is then synced as a deletion and a creation).
      if (stat.kind === 'file' && (cand.size !== stat.size || cand.mtimeNs !== stat.mtimeNs)) continue;
      if (this.ctx.excluder.ignores(cand.path, cand.kind === 'dir')) continue;
      const now = this.lstatL(cand.path);
      if (now && now.ino === cand.ino) continue; // a hard link, not a move
      return cand.path;
    }
    return null;
  }

  /** The server still has `from` as the base knows it, and nothing at `to`. */
  private async serverStillAsBase(from: string, to: string): Promise<boolean> {
    const base = this.db.get(from);
    if (!base) return false;
    const [rFrom, rTo] = await this.statServer([from, to]);
    return !!rFrom && !rTo && !remoteChanged(rFrom, base);
  }

  /** This computer still has `from` as the base knows it, and nothing at `to`. */
  private hereStillAsBase(from: string, to: string): boolean {
    const base = this.db.get(from);
    const lFrom = this.lstatL(from);
    return !!base && !!lFrom && !this.lstatL(to) && sameAsEntry(lFrom, base);
  }

  private statServer(paths: string[]) {
    return statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, paths, this.ctx.caps);
  }

  /** lstat for decisions: absent when a folder above the path is not one (N5). */
  private lstatL(path: string): LocalStat | null {
    return lstatInRoot(this.ctx.localRoot, path);
  }
}
