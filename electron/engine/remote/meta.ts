/**
 * Upkeep rules of `.lipsync/` shared by both backends (ops-local.ts, ops-ssh.ts):
 * which trash days are old enough to go, how old a left staging folder must be,
 * and what a staging-name prefix may hold. The names themselves: shared/layout.ts.
 */
import { LipsyncError } from '../errors.js';

/** A staging-name prefix: letters, digits, '-' and '_' only (it is used in a shell glob). */
export function checkIncomingPrefix(prefix: string): string {
  if (!/^[A-Za-z0-9_-]+$/.test(prefix)) throw new Error(`invalid staging name: ${JSON.stringify(prefix)}`);
  return prefix;
}

/**
 * Trash day dirs whose name sorts before this 'YYYY-MM-DD' are older than
 * `olderThanDays` days. Trash dirs are named by UTC day (toISOString), so
 * the cutoff is computed in UTC too.
 */
export function trashCutoff(olderThanDays: number, now: Date = new Date()): string {
  if (!Number.isFinite(olderThanDays) || olderThanDays < 0)
    throw new LipsyncError('unknown', `Invalid trash retention ${olderThanDays} days.`);
  return new Date(now.getTime() - Math.floor(olderThanDays) * 86_400_000).toISOString().slice(0, 10);
}

/** A trash day folder's name. */
export const DAY_DIR = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A staging folder is removed by the client that made it, or at its next start; one of a
 * client that never came back is removed when it is this old (by its folder's mtime).
 */
export const INCOMING_STALE_DAYS = 7;
