import type { LogRecord, PairStatus } from './status.js';

// The timers of whichever runtime loads this (Electron's main process, a browser tab): shared/
// has neither Node's nor the DOM's types, so only what the batcher uses is declared here.
declare function setTimeout(cb: () => void, ms: number): unknown;
declare function clearTimeout(t: unknown): void;

/** The folder's last path component: what people call a pair ("Documents"). */
export function pairName(p: Pick<PairStatus, 'id' | 'local'>): string {
  const base = p.local.replace(/\/+$/, '').split('/').pop();
  return base || p.id;
}

/** "Snoozed until turned back on" (JSON-safe, unlike Infinity). */
export const SNOOZE_FOREVER = Number.MAX_SAFE_INTEGER;

export interface BatcherOptions {
  /** At most one batch of notifications every this many ms. */
  intervalMs: number;
  /** Wait this long after the first record of a batch for more to arrive (default 2 s). */
  settleMs?: number;
  /** Receives the texts of each batch (not called for an empty batch or while snoozed). */
  notify: (texts: string[]) => void;
  /** What people call a pair ("Documents" rather than "documents-2"); default: its id. */
  pairName?: (id: string) => string;
  /** Count files synced ("12 files synced"): the desktop does; the web UI tells only what needs a look. */
  files?: boolean;
  now?: () => number;
}

interface PairCounts {
  files: number;
  conflicts: number;
  errors: string[];
  /** Why the engine paused the pair itself (a mass deletion waiting for a confirm). */
  paused: string[];
}

/**
 * Turns activity-log records into few notifications (the desktop app's, and the web UI's
 * once allowed): records are counted, and at most one batch goes out every `intervalMs`
 * ("12 files synced", "1 conflict in Documents", "Sync error in Photos: …", "Paused Photos: …").
 * While snoozed, batches are dropped (the tray still shows the state). The same error for the
 * same pair is notified once until that pair has synced again. A pause the user asked for is
 * not news; one the engine made (mass deletion: waiting for a confirm) is.
 */
export class NotificationBatcher {
  private counts = new Map<string, PairCounts>();
  private timer: unknown = null;
  private lastFlushAt = Number.NEGATIVE_INFINITY;
  private snoozedUntil: number | null = null;
  private readonly lastError = new Map<string, string>();
  private readonly now: () => number;

  constructor(private readonly opts: BatcherOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Snooze until an epoch ms (SNOOZE_FOREVER: until `snooze(null)`); null turns notifications back on. */
  snooze(until: number | null): void {
    this.snoozedUntil = until;
  }

  isSnoozed(): boolean {
    return this.snoozedUntil !== null && this.snoozedUntil > this.now();
  }

  feed(r: LogRecord): void {
    const c = this.counts.get(r.pair) ?? { files: 0, conflicts: 0, errors: [], paused: [] };
    const files = this.opts.files ?? true;
    let counted = true;
    switch (r.event) {
      case 'push':
      case 'pull':
      case 'delete':
        c.files += fileCount(r);
        this.lastError.delete(r.pair);
        counted = files;
        break;
      case 'rename':
        c.files += 1;
        counted = files;
        break;
      case 'state':
        // "paused: Deleting 12 of 20 files… Run `lipsync confirm docs` to go on." (warn); the
        // user's own "paused" / "paused for 60 min" are info.
        if (r.level === 'warn' && r.msg.startsWith('paused: ')) c.paused.push(r.msg.slice('paused: '.length));
        else counted = false;
        break;
      case 'conflict':
        // A new conflict is a warning; "conflict N resolved" is info and not news.
        if (r.level === 'warn') c.conflicts += 1;
        else counted = false;
        break;
      case 'error':
        if (r.level === 'error' && this.lastError.get(r.pair) !== r.msg) {
          this.lastError.set(r.pair, r.msg);
          c.errors.push(r.msg);
        } else counted = false;
        break;
      default:
        counted = false;
    }
    if (!counted) return;
    this.counts.set(r.pair, c);
    this.schedule();
  }

  private schedule(): void {
    if (this.timer) return;
    const now = this.now();
    const at = Math.max(now + (this.opts.settleMs ?? 2000), this.lastFlushAt + this.opts.intervalMs);
    this.timer = setTimeout(() => {
      this.timer = null;
      const texts = this.flush();
      if (texts.length) this.opts.notify(texts);
    }, at - now);
    (this.timer as { unref?: () => void } | null)?.unref?.();
  }

  /** Take the texts of what was counted so far (empty while snoozed: the batch is dropped). */
  flush(): string[] {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    const counts = this.counts;
    this.counts = new Map();
    this.lastFlushAt = this.now();
    if (this.isSnoozed()) return [];
    const texts = batchTexts(counts, this.opts.pairName ?? ((id) => id));
    return (this.opts.files ?? true) ? texts : texts.filter((t) => !FILES_SYNCED.test(t));
  }

  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}

function fileCount(r: LogRecord): number {
  // "sent 1234 files": the paths list is capped (1000), the message has the count.
  const m = /(\d+) (?:file|path)/.exec(r.msg);
  if (m) return Number(m[1]);
  return r.paths?.length ?? 1;
}

const FILES_SYNCED = /^\d+ files? synced/;

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function listNames(names: string[]): string {
  if (names.length <= 2) return names.join(' and ');
  return `${names.length} folders`;
}

/** The notification texts of one batch: files synced, then conflicts, then errors, then pauses. */
export function batchTexts(counts: Map<string, PairCounts>, name: (id: string) => string): string[] {
  const texts: string[] = [];
  const entries = [...counts.entries()];
  const files = entries.reduce((n, [, c]) => n + c.files, 0);
  if (files > 0) {
    const where = entries.filter(([, c]) => c.files > 0).map(([id]) => name(id));
    texts.push(`${plural(files, 'file')} synced${where.length === 1 ? ` in ${where[0]}` : ''}`);
  }
  const conflicted = entries.filter(([, c]) => c.conflicts > 0);
  const conflicts = conflicted.reduce((n, [, c]) => n + c.conflicts, 0);
  if (conflicts > 0) texts.push(`${plural(conflicts, 'conflict')} in ${listNames(conflicted.map(([id]) => name(id)))}`);
  for (const [id, c] of entries) {
    if (!c.errors.length) continue;
    const more = c.errors.length > 1 ? ` (and ${plural(c.errors.length - 1, 'more error')})` : '';
    texts.push(`Sync error in ${name(id)}: ${c.errors[0]}${more}`);
  }
  for (const [id, c] of entries) if (c.paused.length) texts.push(`Paused ${name(id)}: ${c.paused.at(-1)}`);
  return texts;
}
