/**
 * One sync cycle of a pair: collect the paths that may have changed on either side
 * (cycle/collect-local.ts, cycle/collect-remote.ts), send new folders whole
 * (cycle/new-folders.ts) and pull new server folders whole (cycle/new-remote-folders.ts), then decide each path with the reconciler (cycle/decide.ts over
 * reconcile.ts, the one table of rules) and act in bounded chunks (cycle/act.ts,
 * cycle/transfer.ts): moves (cycle/moves.ts), one rsync push, one rsync pull, conflict copies. The
 * base (state database) follows each step only after it succeeded, so a crash at any
 * instant is recovered by the next cycle. This file holds the order of those steps.
 */
import type { StateDb } from './state/db.js';
import type { DirtySnapshot } from './dirty.js';
import { localChangedSince } from './since.js';
import { ACTIONS } from './reconcile.js';
import { traced } from './trace.js';
import { smallLimit, smallOptionsOf } from './remote/small-files.js';
import { CHUNK, CHUNK_SLACK, CycleState, LOCK_HOLD_MS, MassDeleteError, type CycleContext } from './cycle/context.js';
import { overlapSafe, tooManyDeletions } from './cycle/compare.js';
import { LocalCollector } from './cycle/collect-local.js';
import { RemoteCollector } from './cycle/collect-remote.js';
import { NewFolders } from './cycle/new-folders.js';
import { NewRemoteFolders } from './cycle/new-remote-folders.js';
import { Decider } from './cycle/decide.js';
import { Transfers } from './cycle/transfer.js';
import { Actor } from './cycle/act.js';
import { Moves } from './cycle/moves.js';

export {
  CHUNK,
  CHUNK_SLACK,
  LOCK_HOLD_MS,
  TREE_GROUPS,
  MassDeleteError,
  emptyTotals,
  type CycleContext,
  type CycleTotals,
} from './cycle/context.js';

export class Cycle {
  private readonly db: StateDb;
  private readonly s = new CycleState();
  private readonly local: LocalCollector;
  private readonly remote: RemoteCollector;
  private readonly trees: NewFolders;
  private readonly remoteTrees: NewRemoteFolders;
  private readonly decider: Decider;
  private readonly actor: Actor;
  private readonly moves: Moves;

  constructor(private readonly ctx: CycleContext) {
    this.db = ctx.db;
    this.trees = new NewFolders(ctx, this.s, (path) => this.local.scanLocalTree(path));
    this.moves = new Moves(ctx, {
      scanLocalTree: (path) => this.local.scanLocalTree(path),
      scanServerTree: (path) => this.remote.scanRemote(path, true),
      addedHere: (path, stat) => this.local.addedAfterAll(path, stat),
    });
    this.local = new LocalCollector(ctx, this.s, this.trees, this.moves);
    this.remoteTrees = new NewRemoteFolders(ctx, this.s);
    this.remote = new RemoteCollector(ctx, this.s, this.moves, this.remoteTrees);
    this.decider = new Decider(ctx);
    this.actor = new Actor(ctx, this.s, new Transfers(ctx));
  }

  // ================================================================ collecting candidates (read-only)

  async collect(local: DirtySnapshot | null, remote: DirtySnapshot | null): Promise<void> {
    this.db.candClear();
    // After a clean stop both sides are listed at once (each is a walk by find).
    if (local?.since != null && !local.full)
      this.s.localSince = this.ctx.localSincePrefetch ?? localChangedSince(this.ctx.localRoot, Number(local.since));
    const remoteSinceId = remote?.since;
    if (remoteSinceId != null && !remote?.full && this.ctx.direction !== 'send-only' && !this.ctx.remoteSincePolled)
      this.s.remoteSince =
        this.ctx.remoteSincePrefetch ??
        traced('remote changed since', () => this.remote.remoteChangedSince(remoteSinceId));
    // Not awaited yet: a failure is seen where it is used.
    this.s.localSince?.catch(() => undefined);
    this.s.remoteSince?.catch(() => undefined);
    if (local) await traced('collect local', () => this.local.collectLocal(local));
    if (remote && this.ctx.direction !== 'send-only') {
      // New server folders found by this listing are pulled whole (T3), not walked.
      this.remoteTrees.open = true;
      try {
        await traced('collect remote', () => this.remote.collectRemote(remote));
      } finally {
        this.remoteTrees.open = false;
      }
    }
    if (this.s.sinceReport.length) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'state',
        msg:
          this.ctx.restartedFrom === 'checkpoint'
            ? `started after an end that was not clean (a crash, a kill or a power loss): looked at what changed since the last checkpoint (${this.s.sinceReport.join(', ')}), not at every file`
            : `started after a clean stop: looked at what changed since (${this.s.sinceReport.join(', ')}), not at every file`,
      });
    }
  }

  // ================================================================ deciding and acting

  /**
   * Counts what the candidates would delete; throws MassDeleteError past the threshold.
   * What a planned move takes from its old path is moved, not deleted (Moves).
   */
  async checkMassDelete(): Promise<void> {
    if (this.ctx.massDeleteConfirmed) return;
    // Only paths the base knows as files can be deleted: when even all of them stay
    // under the threshold (always so on a first sync), there is nothing to count.
    // What planned moves take from their old paths is not counted (Moves).
    let n = this.db.candBaseFileCount();
    for (const source of this.moves.topSources()) n -= this.db.candBaseFileCountIn(source);
    if (n <= 2) return;
    const files = this.db.fileCount();
    if (!tooManyDeletions(n, files)) return;
    let deletions = 0;
    // Peek without consuming: candidates are re-added after counting.
    const all: string[] = [];
    for (;;) {
      const chunk = this.db.candTake(CHUNK);
      if (!chunk.length) break;
      all.push(...chunk);
      // What a planned move takes from its old path is moved, not deleted: not even looked at.
      const decided = await this.decider.decideChunk(chunk.filter((p) => !this.moves.underPlannedSource(p)));
      for (const d of decided) {
        if (ACTIONS[d.decision.action].deletes && (d.base?.kind ?? 'file') !== 'dir') deletions++;
      }
    }
    this.db.candAdd(all);
    if (tooManyDeletions(deletions, files)) throw new MassDeleteError(deletions, files);
  }

  async execute(): Promise<void> {
    // A chunk that changes the server is decided and acted on under the server lock,
    // so another client cannot change the server between our look at it and our
    // writes. Local changes will most likely be written, so their chunks take the lock
    // first; a chunk of server changes only reads the server, and is decided again
    // under the lock if it turns out to write. Except (P5): a chunk whose only writes
    // are small files goes without it; their put script holds the lock itself.
    // Moves first; what they bring (a look below each moved folder, a move that no
    // longer held) has not been counted yet.
    const moved = await traced('moves', () => this.moves.carryOut());
    if (moved) await this.checkMassDelete();
    // A few changes in all are decided first: small files then go under a lock their put
    // script holds itself (P5), one round trip instead of three.
    const small = smallOptionsOf(this.ctx);
    const fewFirst = small !== null && this.db.candCount() <= smallLimit(small) && !!this.ctx.lockForScript?.();
    const lockFirst = this.s.localCandidates > 0 && this.ctx.direction !== 'receive-only' && !fewFirst;
    await this.trees.pushNewTrees();
    await this.remoteTrees.pullNewTrees();
    let chunk = this.takeChunk();
    while (chunk.length) {
      this.ctx.checkPaused();
      chunk = lockFirst
        ? await this.ctx.withRemoteLock(() => this.runChunks(chunk, true))
        : await this.runChunks(chunk, false);
    }
    await this.actor.deleteDeferredDirs();
  }

  /**
   * Decides and acts on `first` and the chunks after it, deciding the next chunk while
   * this one is sent (its local stats and server stat overlap the rsync run) whenever
   * acting on this one cannot change what that decision rests on (overlapSafe).
   * `locked`: the caller holds the server lock, so a decision made under it stays valid
   * until acted on; the lock is let go (by returning) once held for LOCK_HOLD_MS, so
   * other clients get their turn in a long sync. Unlocked, a chunk that would write
   * the server is decided again under the lock. Returns the chunk left for the caller
   * (empty when there are no more candidates).
   */
  private async runChunks(first: string[], locked: boolean): Promise<string[]> {
    const heldSince = Date.now();
    let chunk = first;
    let decided = await this.decider.decideChunk(chunk);
    for (;;) {
      if (!locked && decided.some((d) => ACTIONS[d.decision.action].writesRemote)) {
        if (this.actor.canActUnlocked(decided)) await this.actor.act(decided, true);
        else await this.ctx.withRemoteLock(async () => this.actor.act(await this.decider.decideChunk(chunk)));
        return this.takeChunk();
      }
      const next = this.takeChunk();
      const overlap = next.length > 0 && overlapSafe(decided) && (!locked || Date.now() - heldSince < LOCK_HOLD_MS);
      const ahead = overlap ? this.decider.decideChunk(next) : null;
      ahead?.catch(() => undefined); // seen below, unless acting on this chunk fails first
      await this.actor.act(decided);
      if (!ahead) return next;
      this.ctx.checkPaused();
      chunk = next;
      decided = await ahead;
    }
  }

  /**
   * The next chunk of candidates: CHUNK of them, or up to CHUNK_SLACK more when that
   * takes the last ones (10,001 new paths, a folder and its files, go in two chunks,
   * not three; each chunk costs an rsync run and two server stats).
   */
  private takeChunk(): string[] {
    const paths = this.db.candTake(CHUNK + CHUNK_SLACK);
    if (paths.length < CHUNK + CHUNK_SLACK) return paths;
    this.db.candAdd(paths.splice(CHUNK)); // more may follow: back for the next chunk
    return paths;
  }
}
