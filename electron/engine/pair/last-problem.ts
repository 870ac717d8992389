/**
 * The problem a pair's last run ended with (the mass-delete pause, or an error),
 * kept in its database so `lipsync status` without a daemon can show it. A good
 * run clears it.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { StateDb } from '../state/db.js';

const LAST_PROBLEM_META = 'lastProblem';

export interface LastProblem {
  as: 'mass-delete' | 'error';
  info: ErrorInfo;
}

/** The problem the pair's last run ended with, from its database; undefined when none (or unreadable). */
export function readLastProblem(db: StateDb): LastProblem | undefined {
  const raw = db.getMeta(LAST_PROBLEM_META);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as LastProblem;
  } catch {
    return undefined;
  }
}

/** Keeps the problem a run ended with (cleared by a good run, clearLastProblem). */
export function rememberProblem(db: StateDb, as: LastProblem['as'], info: ErrorInfo): void {
  db.setMeta(LAST_PROBLEM_META, JSON.stringify({ as, info, at: Date.now() }));
}

export function clearLastProblem(db: StateDb): void {
  db.setMeta(LAST_PROBLEM_META, '');
}
