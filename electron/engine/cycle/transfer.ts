/**
 * The transfers of a chunk: one rsync push and one rsync pull, each with progress by
 * bytes, then the base follows what each one did. After a push, the server's side is
 * stat'ed and compared with what was sent (W3); before a push, what is sent is noted (W5).
 */
import type { Entry, RemoteStat } from '../types.js';
import type { StateDb } from '../state/db.js';
import { rsyncPull, rsyncPush, type PushOptions, type PushResult } from '../remote/rsync.js';
import { statRemote } from '../remote/stat.js';
import {
  fetchSmall,
  pickSmall,
  putSmall,
  placeSmall,
  smallLimit,
  smallOptionsOf,
  type SmallOptions,
  type SmallResult,
} from '../remote/small-files.js';
import { LipsyncError } from '../errors.js';
import { ACTIONS } from '../reconcile.js';
import type { ScriptLock } from '../pair/lock.js';
import { traced } from '../trace.js';
import { newTrashDir } from '../versions.js';
import { LocalAncestors, SymlinkedParentError, unlinkInRoot, waitsForParent } from '../safe-fs.js';
import { nowNs, type CycleContext, type CycleTotals, type Decided } from './context.js';
import { landedAsSent, ownSnapshot } from './compare.js';
import { entryFor, racyHash } from './base-rows.js';

export class Transfers {
  private readonly db: StateDb;

  constructor(private readonly ctx: CycleContext) {
    this.db = ctx.db;
  }

  /**
   * One rsync run over `items`, either way: a fresh trash folder, the bandwidth limit, and
   * progress by bytes (the total of the sending side's file sizes) with the current file:
   * the first one of the run that rsync has not reported done.
   */
  transferOptions(items: Decided[], way: 'push' | 'pull'): PushOptions {
    const paths = items.map((d) => d.path);
    const sizes = items.map((d) => {
      const s = way === 'push' ? d.local : d.remote;
      return s?.kind === 'file' ? s.size : 0;
    });
    const bytesTotal = sizes.reduce((a, b) => a + b, 0);
    const sizeOf = new Map(paths.map((p, i) => [p, sizes[i]!]));
    // rsync names a file when the sender starts it (push: our side) or once it arrived (pull).
    const done = new Set<string>();
    let started: string | undefined;
    let next = 0;
    const current = (): string | undefined => {
      if (way === 'push') return started;
      while (next < paths.length && (done.has(paths[next]!) || sizes[next] === 0)) next++;
      return paths[next];
    };
    return {
      localRoot: this.ctx.localRoot,
      remote: this.ctx.remote,
      ssh: this.ctx.ssh,
      paths,
      trashDir: newTrashDir(),
      bwLimitKBps: this.ctx.bwLimitKBps || undefined,
      compress: this.ctx.compress?.() ?? false,
      metaReady: way === 'push' && (this.ctx.remoteMetaFresh?.() ?? false),
      onFile: (f) => {
        done.add(f.path);
        if ((sizeOf.get(f.path) ?? 0) > 0) started = f.path;
      },
      onProgress: (p) => {
        const file = current();
        // A push's last named file is still being sent while bytes are left.
        const sending = way === 'push' && started !== undefined && p.bytes < bytesTotal ? 1 : 0;
        this.ctx.onProgress({
          filesDone: Math.max(0, Math.min(done.size - sending, paths.length)),
          filesTotal: paths.length,
          bytes: Math.min(p.bytes, bytesTotal || p.bytes),
          rateBps: p.rateBps,
          bytesTotal,
          ...(file !== undefined ? { currentFile: file } : {}),
        });
      },
    };
  }

  /**
   * Whether a decided chunk may be acted on without taking the server lock first (P5): every
   * decision that writes the server is a push of a small file (P1), which the put script
   * sends under a lock it holds itself, after checking that the server's side is still what
   * the decision saw.
   */
  canPushUnlocked(decided: Decided[]): boolean {
    const writes = decided.filter((d) => ACTIONS[d.decision.action].writesRemote);
    const o = this.smallOptions();
    if (!writes.length || !o || !this.ctx.lockForScript?.()) return false;
    if (writes.some((d) => ACTIONS[d.decision.action].lane !== 'push' || !d.local)) return false;
    if (decided.some((d) => ACTIONS[d.decision.action].lane === 'compare')) return false;
    return (
      pickSmall(
        writes.map((d) => ({ path: d.path, from: d.local!, to: d.remote })),
        smallLimit(o),
      ).other.length === 0
    );
  }

  /**
   * One push of a chunk. `unlocked` (P5): the caller does not hold the server lock, so only
   * small files go, through a script that holds the lock itself; whatever that script did
   * not send is looked at again (and the next writes wait for the lock as before).
   */
  async push(items: Decided[], unlocked = false): Promise<void> {
    this.ctx.checkPaused();
    this.ctx.expectEcho?.(items.filter((d) => d.local).map((d) => d.path));
    try {
      // W5: what is being sent, so a push cut short is not taken for another side's edit.
      this.db.sendingAdd(
        items.flatMap((d) =>
          d.local?.kind === 'file' ? [{ path: d.path, size: d.local.size, mtimeNs: d.local.mtimeNs }] : [],
        ),
      );
      // W6: small files in one script through the session; the rest (and what it left) by rsync.
      const hold = unlocked ? (this.ctx.lockForScript?.() ?? null) : null;
      if (unlocked && !hold) throw new LipsyncError('unknown', 'A push without the server lock was asked for.');
      const small = await this.putSmallFiles(items, hold ?? undefined);
      let byRsync = small ? items.filter((d) => !small.taken.has(d.path)) : items;
      if (hold && byRsync.length) {
        // Not sent under the script's own lock (the lock was taken, a path needs rsync):
        // looked at again, and the next writes take the lock first.
        hold.refused();
        for (const d of byRsync) {
          this.ctx.requeueLocalTree(d.path);
          this.ctx.requeueRemote?.(d.path);
        }
        // Their W5 notes stay: a script cut off after a file landed left the server holding
        // what was sent, which the next decision must take for this client's own (W5).
        byRsync = [];
      }
      const res = byRsync.length
        ? await traced(`rsync push ${byRsync.length}`, () => rsyncPush(this.transferOptions(byRsync, 'push')))
        : emptyTransfer();
      const failed = failedFiles(this.ctx.totals, res);
      const sentByRsync = byRsync.filter((d) => d.local && !failed.has(d.path));
      const stats = await traced(`stat ${sentByRsync.length} on the server after the push`, () =>
        sentByRsync.length
          ? statRemote(
              this.ctx.remote,
              this.ctx.ssh,
              this.ctx.remote.path,
              sentByRsync.map((d) => d.path),
              this.ctx.caps,
            )
          : Promise.resolve([]),
      );
      const afterOf = new Map<string, RemoteStat | null>(sentByRsync.map((d, i) => [d.path, stats[i] ?? null]));
      for (const [path, st] of small?.res.done ?? []) afterOf.set(path, st as RemoteStat);
      if (small) mergeSmall(res, small.res);
      const sentNow = items.filter((d) => d.local && afterOf.has(d.path));
      const after = sentNow.map((d) => afterOf.get(d.path) ?? null);
      const syncedAtNs = nowNs();
      const rows: Entry[] = [];
      const sentSize = new Map(res.items.filter((it) => !it.deleted).map((it) => [it.path, it.size]));
      const here = new LocalAncestors(this.ctx.localRoot); // N5: a path below a link is absent here
      for (let i = 0; i < sentNow.length; i++) {
        const d = sentNow[i]!;
        let local = d.local!;
        let r = after[i] ?? null;
        // The file here may have changed while rsync read it (rule W2): look again next time.
        const now = local.kind === 'file' ? here.lstat(d.path) : local;
        const movedOn = !now || now.kind !== local.kind || now.size !== local.size || now.mtimeNs !== local.mtimeNs;
        if (movedOn) this.ctx.requeueLocalTree(d.path);
        if (r && !landedAsSent(local, r) && now && movedOn && ownSnapshot(local, now, r, sentSize.get(d.path))) {
          // rsync read the file after it changed: the server holds a version this client
          // wrote (a snapshot between the two states seen here), not another side's edit.
          // The base records that version on both sides, so the local change since is
          // sent next as an ordinary change, never taken for a conflict.
          local = { ...local, size: r.size, mtimeNs: r.mtimeNs };
        } else if (!r || !landedAsSent(local, r)) {
          // Not what was sent (changed on the server meanwhile, or gone): the base records
          // what was sent, so the server's side counts as changed and is looked at again.
          r = null;
          this.ctx.requeueRemote?.(d.path);
        }
        const hash = movedOn ? null : await racyHash(this.ctx.localRoot, d.path, local, syncedAtNs);
        rows.push(entryFor(d.path, local, r, hash, syncedAtNs));
      }
      const deleted = byRsync.filter((d) => !d.local && !failed.has(d.path)).map((d) => d.path);
      this.recordTransfer('push', res, rows, deleted);
    } finally {
      this.ctx.expectEcho?.(null);
    }
  }

  async pull(all: Decided[]): Promise<void> {
    this.ctx.checkPaused();
    // The local side must still be what the decision saw; a path changed since is decided again next cycle.
    const items: Decided[] = [];
    const before = new LocalAncestors(this.ctx.localRoot);
    for (const d of all) {
      const now = before.lstat(d.path);
      const same = !now
        ? !d.local
        : !!d.local && now.kind === d.local.kind && now.size === d.local.size && now.mtimeNs === d.local.mtimeNs;
      if (same) items.push(d);
      else this.ctx.requeueLocalTree(d.path);
    }
    if (!items.length) return;
    // W7: small files in one script through the session; the rest (and what it left) by rsync.
    const small = await this.fetchSmallFiles(items);
    const byRsync = small ? items.filter((d) => !small.taken.has(d.path)) : items;
    const res = byRsync.length
      ? await traced(`rsync pull ${byRsync.length}`, () => rsyncPull(this.transferOptions(byRsync, 'pull')))
      : emptyTransfer();
    const failed = failedFiles(this.ctx.totals, res);
    if (small) {
      mergeSmall(res, small.res);
      for (const p of small.res.changed) failed.add(p);
    }
    // The session's script checked the folders above what it read, before and after (N5).
    const outside = await this.readThroughLink(byRsync.filter((d) => d.remote?.kind === 'file' && !failed.has(d.path)));
    const syncedAtNs = nowNs();
    const rows: Entry[] = [];
    const deleted: string[] = [];
    const after = new LocalAncestors(this.ctx.localRoot);
    for (const d of items) {
      if (failed.has(d.path) || outside.has(d.path)) continue;
      if (!d.remote) {
        deleted.push(d.path);
        continue;
      }
      const l = after.lstat(d.path);
      if (!l) continue;
      rows.push(entryFor(d.path, l, d.remote, await racyHash(this.ctx.localRoot, d.path, l, syncedAtNs), syncedAtNs));
    }
    this.recordTransfer('pull', res, rows, deleted);
  }

  /** The options of the session path (W6, W7), or null when this pair cannot use it. */
  private smallOptions(): SmallOptions | null {
    return smallOptionsOf(this.ctx);
  }

  /**
   * W6: the small files of a push through the session. Returns the paths it took (done,
   * or not sent because a side changed since the decision: those are looked at again and
   * their W5 note dropped) and its result; null when nothing went this way.
   */
  private async putSmallFiles(
    items: Decided[],
    hold?: ScriptLock,
  ): Promise<{ taken: Set<string>; res: SmallResult } | null> {
    const o = this.smallOptions();
    if (!o) return null;
    const { small } = pickSmall(
      items.flatMap((d) => (d.local ? [{ path: d.path, from: d.local, to: d.remote }] : [])),
      smallLimit(o),
    );
    if (!small.length) return null;
    const res = await traced(`put ${small.length} small files`, () => putSmall(o, small, hold));
    for (const p of res.changed) {
      this.ctx.requeueLocalTree(p);
      this.ctx.requeueRemote?.(p);
    }
    this.db.sendingDelete(res.changed);
    const rest = new Set(res.rest);
    return { taken: new Set(small.map((s) => s.path).filter((p) => !rest.has(p))), res };
  }

  /** W7: the small files of a pull through the session; as putSmallFiles. */
  private async fetchSmallFiles(items: Decided[]): Promise<{ taken: Set<string>; res: SmallResult } | null> {
    const o = this.smallOptions();
    if (!o) return null;
    const { small } = pickSmall(
      items.flatMap((d) => (d.remote ? [{ path: d.path, from: d.remote, to: d.local, peek: d.peek }] : [])),
      smallLimit(o),
    );
    if (!small.length) return null;
    // P6: what the decision's look at the server read already is placed without asking again.
    const read = small.flatMap((it) => (it.peek ? [{ item: it, data: it.peek }] : []));
    const res = await placeSmall(o, read);
    const ask = [...small.filter((it) => !it.peek), ...small.filter((it) => res.rest.includes(it.path))];
    res.rest = [];
    if (ask.length) {
      const more = await traced(`fetch ${ask.length} small files`, () => fetchSmall(o, ask));
      for (const [p, st] of more.done) res.done.set(p, st);
      res.changed.push(...more.changed);
      res.rest.push(...more.rest);
      res.items.push(...more.items);
      res.literalBytes += more.literalBytes;
    }
    for (const p of res.changed) {
      this.ctx.requeueLocalTree(p);
      this.ctx.requeueRemote?.(p);
    }
    const rest = new Set(res.rest);
    return { taken: new Set(small.map((s) => s.path).filter((p) => !rest.has(p))), res };
  }

  /**
   * N5 on the sending side of a pull: the server's rsync opens each listed path by its
   * name, so a folder above it that another client swapped for a symlink between the
   * decision and the read has the file read through that link, from outside the server's
   * root. The folders above what arrived are stat'ed again: a file below one that is no
   * longer a folder is removed here (the version it replaced is in the trash), its base
   * row is forgotten (so its absence is not taken for a local deletion), and it is looked
   * at again. Returns those paths. (A swap there and back within one rsync run is not
   * seen; docs/sync-semantics.md, N5.)
   */
  private async readThroughLink(pulled: Decided[]): Promise<Set<string>> {
    const nested = pulled.map((d) => d.path).filter((p) => p.includes('/'));
    const outside = new Set<string>();
    if (!nested.length) return outside;
    const above = new Map<string, RemoteStat | null>();
    await statRemote(this.ctx.remote, this.ctx.ssh, this.ctx.remote.path, nested, this.ctx.caps, above);
    for (const path of nested) {
      if (waitsForParent(path, above) === null) continue;
      outside.add(path);
      try {
        unlinkInRoot(this.ctx.localRoot, path);
      } catch (e) {
        // Gone already, or a folder above it here became a link too: nothing read is left here.
        if (!(e instanceof SymlinkedParentError) && (e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
      this.db.deleteTree(path);
      this.ctx.requeueRemote?.(path);
    }
    if (outside.size)
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'warn',
        event: 'state',
        msg: `${outside.size} file${outside.size === 1 ? '' : 's'} received through a folder that became a symlink on the server meanwhile: removed here, not kept (N5)`,
        paths: [...outside].slice(0, 1000),
      });
    return outside;
  }

  /**
   * After a transfer succeeded: the base follows (in one transaction), the totals
   * count it, and the activity log says what moved, which way.
   */
  private recordTransfer(way: 'push' | 'pull', res: PushResult, rows: Entry[], deleted: string[]): void {
    this.db.transaction(() => {
      for (const p of deleted) this.db.deleteTree(p);
      this.db.upsert(rows);
      if (way === 'push') this.db.sendingDelete(rows.map((r) => r.path));
    });
    const files = res.items.filter((i) => !i.deleted && /^[<>]f/.test(i.itemize)).map((i) => i.path);
    const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;
    if (way === 'push') {
      this.ctx.totals.filesSent += files.length;
      this.ctx.totals.bytesSent += res.literalBytes;
    } else {
      this.ctx.totals.filesReceived += files.length;
    }
    this.ctx.totals.deleted += deleted.length;
    if (files.length) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: way,
        msg: `${way === 'push' ? 'sent' : 'received'} ${plural(files.length, 'file')} (${res.literalBytes} bytes of data)`,
        paths: files.slice(0, 1000),
        bytes: res.literalBytes,
      });
    }
    if (deleted.length) {
      this.ctx.log.write({
        pair: this.ctx.pair,
        level: 'info',
        event: 'delete',
        msg:
          way === 'push'
            ? `deleted ${plural(deleted.length, 'path')} on the server (kept in its .lipsync/trash)`
            : `deleted ${plural(deleted.length, 'path')} here, as on the server (kept in .lipsync/trash)`,
        paths: deleted.slice(0, 1000),
      });
    }
  }
}

/** A transfer that moved nothing (every path went through the session). */
function emptyTransfer(): PushResult {
  return { ok: true, items: [], itemCount: 0, literalBytes: 0, warnings: [] };
}

/** Adds what the session path did to rsync's result, as if rsync had done it. */
function mergeSmall(res: PushResult, small: SmallResult): void {
  res.items.push(...small.items);
  res.itemCount += small.items.length;
  res.literalBytes += small.literalBytes;
}

/** Paths rsync reported as failed or vanished (their warnings go to `totals`); throws when the run failed as a whole. */
export function failedFiles(totals: CycleTotals, res: PushResult): Set<string> {
  totals.warnings.push(...res.warnings.map((w) => w.toInfo()));
  const failed = new Set<string>();
  for (const w of res.warnings) for (const f of w.files ?? []) failed.add(f);
  if (!res.ok) {
    if (
      res.error &&
      (res.error.kind === 'partial-transfer' || res.error.kind === 'permission-denied') &&
      res.error.files?.length
    ) {
      totals.warnings.push(res.error.toInfo());
      for (const f of res.error.files) failed.add(f);
      return failed;
    }
    throw res.error ?? new LipsyncError('unknown', 'rsync failed.');
  }
  return failed;
}
