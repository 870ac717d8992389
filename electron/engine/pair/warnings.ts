/**
 * The warnings a pair shows, and what a completed cycle's warnings do: the paths
 * named in one are retried on their own back-off (retry.ts); a failing path looked
 * at again that did not fail is healed (its warning goes); a name that is not valid
 * UTF-8 (N3) is a skip, kept until a full look no longer finds it; a file that did
 * not fit on a full disk is held until its next try (unfit.ts). Warnings that name
 * no path are kept until the next cycle.
 */
import type { ErrorInfo } from '../../../shared/errors.js';
import type { DirtySnapshot } from '../dirty.js';
import type { RemoteSpec, SshOptions } from '../types.js';
import type { ActivityLog } from '../log.js';
import type { CycleTotals } from '../cycle.js';
import { PathRetries, dedupeWarnings, snapshotCovers, snapshotTouchesAbove } from '../retry.js';
import { clearPartials, fullSide, unfitWarning } from '../unfit.js';

/** At most this many warnings are shown in a pair's status. */
const SHOWN = 20;

export class PairWarnings {
  /** Paths that failed, retried on a back-off (retry.ts). */
  readonly retries = new PathRetries();
  /** Shown for this run of the pair (a state database rebuilt at start). */
  private notices: ErrorInfo[] = [];
  /** N3 warnings (names that are not valid UTF-8, here or on the server), by message. */
  private readonly badNames = new Map<string, ErrorInfo>();
  /** Warnings of the last completed cycle that name no path. */
  private pathless: ErrorInfo[] = [];

  constructor(
    private readonly pair: string,
    private readonly log: ActivityLog,
  ) {}

  /** What the pair's status shows. */
  shown(): ErrorInfo[] {
    return [...this.notices, ...this.badNames.values(), ...this.retries.warnings(), ...this.pathless].slice(-SHOWN);
  }

  /** A warning for this run of the pair (cleared by the next start), logged now. */
  setNotice(w: ErrorInfo): void {
    this.notices = [w];
    this.logWarning(w);
  }

  clearNotices(): void {
    this.notices = [];
  }

  /**
   * After a completed cycle over these snapshots (`wholeSides`: both sides were looked
   * at whole), with these files held back: see the top of this file.
   */
  afterCycle(
    local: DirtySnapshot,
    remote: DirtySnapshot,
    totals: CycleTotals,
    held: Set<string>,
    wholeSides: boolean,
  ): void {
    // N3: a name that is not valid UTF-8 is skipped on purpose, not a failure to retry: its
    // warning stays until a full look at the pair's sides no longer finds that name.
    const skips = totals.warnings.filter(isBadNameNotice);
    for (const w of skips) this.badNames.set(w.message, w);
    if (wholeSides)
      for (const message of [...this.badNames.keys()])
        if (!skips.some((w) => w.message === message)) this.badNames.delete(message);
    const perPath = totals.warnings.filter((w) => w.files?.length && !isBadNameNotice(w));
    const failedNow = new Set(perPath.flatMap((w) => w.files ?? []));
    const healed = this.retries.settle((p) => snapshotCovers(local, p) || snapshotCovers(remote, p), failedNow, held);
    if (healed.length) {
      this.log.write({
        pair: this.pair,
        level: 'info',
        event: 'state',
        msg: `synced ${healed.length === 1 ? 'a path' : `${healed.length} paths`} that had failed before`,
        paths: healed.slice(0, 1000),
      });
    }
    for (const w of this.retries.failAll(perPath)) this.logWarning(w);
    // A change seen above a failing path (its folder made writable, space freed there): try it now.
    this.retries.poke((p) => snapshotTouchesAbove(local, p) || snapshotTouchesAbove(remote, p));
    this.pathless = dedupeWarnings(totals.warnings.filter((w) => !w.files?.length));
  }

  /** Files that did not fit on a full disk (error `e`): partials removed, a warning each, held until their next try. */
  async holdUnfit(
    e: ErrorInfo,
    files: string[],
    totals: CycleTotals,
    where: { localRoot: string; remote: RemoteSpec; ssh: SshOptions },
  ): Promise<void> {
    const side = fullSide(e, where.localRoot);
    const space = await clearPartials({ side, ...where, files }).catch(() => new Map<string, never>());
    for (const file of files) {
      const w = unfitWarning(file, space.get(file), { side, localRoot: where.localRoot, remote: where.remote });
      totals.warnings.push(w);
      if (this.retries.fail(file, w, { hold: true }).news) this.logWarning(w);
    }
  }

  private logWarning(w: ErrorInfo): void {
    this.log.write({
      pair: this.pair,
      level: 'warn',
      event: 'error',
      msg: `${w.message}${w.fix ? ` Fix: ${w.fix}` : ''}`,
      ...(w.files?.length ? { paths: w.files.slice(0, 1000) } : {}),
    });
  }
}

/** The N3 warning of a name skipped because it is not valid UTF-8 (either side). */
function isBadNameNotice(w: ErrorInfo): boolean {
  return /^Skipped .*not valid UTF-8/.test(w.message);
}
