/**
 * The remote lock as a pair uses it. Several clients sync one remote root: a short
 * lock in its .lipsync/ serialises their writes (the lock itself, mkdir-atomic and
 * dated by the server's clock, is remote/ops.ts). A lock whose holder stopped
 * refreshing it for LOCK_TTL_MS is stale and broken by the next client; one left by
 * a lipsync on this machine that died is broken at once.
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { RemoteOps } from '../remote/ops.js';
import { LipsyncError } from '../errors.js';
import { traced } from '../trace.js';

/** A remote lock not refreshed for this long belongs to a dead client. */
export const LOCK_TTL_MS = 60_000;
/** How long a client waits for a lock held by another live one before it gives up (and retries later). */
const LOCK_WAIT_MS = 60_000;

/**
 * How long after taking the lock a push counts on the meta dirs the lock script made
 * (RemoteOps.lock) instead of checking them again: about as long as a new check's
 * answer would be trusted before the rsync it precedes starts, on a slow link.
 */
export const META_FRESH_MS = 2_000;

/** After a lock held for one script was refused, writes take the lock as before for this long. */
export const SCRIPT_LOCK_OFF_MS = 10_000;

/** A lock a script takes and lets go itself (PairLock.forScript). */
export interface ScriptLock {
  owner: string;
  ttlMs: number;
  /** The script found the lock taken, or did not do its work: forScript says no for a while. */
  refused: () => void;
}

/** One pair's hold on its remote lock: re-entrant, refreshed while held. */
export class PairLock {
  private depth = 0;
  /** When the current hold was taken with the meta dirs made (0: not held, or not made). */
  private metaAt = 0;
  private readonly clientId = randomBytes(4).toString('hex');
  /** Until when forScript says no (after a script found the lock taken, or failed). */
  private scriptOffUntil = 0;

  constructor(
    private readonly ops: RemoteOps,
    private readonly who: { deviceName: string; pair: string },
    /** True once the pair stops: a wait for the lock ends. */
    private readonly stopped: () => boolean,
  ) {}

  /** The owner text written into the lock: who holds it, to break it when that process died here. */
  private owner(): string {
    return `host=${hostname()} pid=${process.pid} device=${this.who.deviceName} pair=${this.who.pair} client=${this.clientId}`;
  }

  /**
   * Whether the lock is held and was taken less than META_FRESH_MS ago with the
   * server's root checked and its meta dirs made: a push then skips prepareMeta.
   */
  metaFresh(): boolean {
    return this.depth > 0 && this.metaAt > 0 && Date.now() - this.metaAt < META_FRESH_MS;
  }

  /**
   * The owner text and TTL of a lock a script takes and lets go by itself (the small files'
   * put, P5), or null while this pair holds the lock (the script then runs inside that hold).
   */
  forScript(): ScriptLock | null {
    if (this.depth > 0 || Date.now() < this.scriptOffUntil) return null;
    return {
      owner: this.owner(),
      ttlMs: LOCK_TTL_MS,
      // Held by another client, or the script could not do its work: the next writes wait
      // for the lock as before (with), rather than ask for it again and again.
      refused: () => {
        this.scriptOffUntil = Date.now() + SCRIPT_LOCK_OFF_MS;
      },
    };
  }

  /** Runs `fn` holding the lock (a nested call runs inside the hold it is in). */
  async with<T>(fn: () => Promise<T>): Promise<T> {
    if (this.depth > 0) {
      this.depth++;
      try {
        return await fn();
      } finally {
        this.depth--;
      }
    }
    const owner = this.owner();
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      const attempt = await traced('lock', () => this.ops.lock(owner, LOCK_TTL_MS));
      if (attempt.acquired) {
        if (attempt.metaReady) this.metaAt = Date.now();
        break;
      }
      if (attempt.holder && holderIsDeadHere(attempt.holder)) {
        // Left by a lipsync on this machine that died (kill -9, crash): no need to wait for it to expire.
        await this.ops.unlock(attempt.holder).catch(() => undefined);
        continue;
      }
      if (Date.now() > deadline || this.stopped()) {
        throw new LipsyncError(
          'unknown',
          `The server folder is locked by another lipsync client (${attempt.holder ?? 'unknown'}).`,
          {
            fix: 'lipsync retries by itself; if that client died, the lock expires within a minute.',
          },
        );
      }
      await new Promise((res) => setTimeout(res, 200 + Math.random() * 300));
    }
    this.depth = 1;
    const heartbeat = setInterval(() => void this.ops.refreshLock(owner).catch(() => undefined), LOCK_TTL_MS / 3);
    heartbeat.unref();
    try {
      return await fn();
    } finally {
      clearInterval(heartbeat);
      this.depth = 0;
      this.metaAt = 0;
      await traced('unlock', () => this.ops.unlock(owner)).catch(() => undefined);
    }
  }
}

/** True when a lock owner text names a process on this host that no longer runs. */
export function holderIsDeadHere(holder: string): boolean {
  const host = /(?:^|\s)host=(\S+)/.exec(holder)?.[1];
  const pid = Number(/(?:^|\s)pid=(\d+)/.exec(holder)?.[1]);
  if (host !== hostname() || !pid || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
