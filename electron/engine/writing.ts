/**
 * Files still being written, on one side of a pair (docs/sync-semantics.md,
 * "Files still being written", rules W1–W4).
 *
 * The watchers report a file's creation (CREATE) and its writes (MODIFY, at most
 * about once a second per file) separately from its close after writing
 * (CLOSE_WRITE). A file created or written to and not closed yet is held here:
 * it is not sent (or fetched) until it is closed, or has been quiet for
 * `quietMs`, or has been held for `maxDelayMs` (a file that never stops changing,
 * a live log, then goes as a whole snapshot, and again after each such period).
 * When a held file becomes due, `onDue` names it (the pair marks it dirty and
 * starts a cycle); the cycle asks `held(path)` before it decides a file, and
 * says `taken(path)` when it acted on one that was due.
 *
 * Bounded: one entry per file written at this moment; an entry goes when the file
 * is closed, deleted or moved away, or once it is sent after being quiet.
 */

/** How often due files are looked for while any file is held. */
const TICK_MS = 250;

interface Writing {
  /** When the current holding period began (ms). */
  since: number;
  /** The last write seen (ms). */
  last: number;
  /** Quiet or held long enough: the next cycle may send it. */
  due: boolean;
}

export interface WriteTrackerOptions {
  quietMs: number;
  maxDelayMs: number;
  onDue: (paths: string[]) => void;
  now?: () => number;
}

export class WriteTracker {
  private readonly files = new Map<string, Writing>();
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(private readonly o: WriteTrackerOptions) {
    this.now = o.now ?? Date.now;
  }

  /** The file at `path` was created or written to, and is not closed yet. */
  writing(path: string): void {
    const t = this.now();
    const w = this.files.get(path);
    if (!w) this.files.set(path, { since: t, last: t, due: false });
    else {
      w.last = t;
      // Written again after it went quiet: hold it again (a snapshot due by age stays due).
      if (w.due && t - w.since < this.o.maxDelayMs) w.due = false;
    }
    this.arm();
  }

  /** The file at `path` was closed after writing, deleted or moved: not held any more. */
  done(path: string): void {
    this.files.delete(path);
    if (!this.files.size) this.disarm();
  }

  /** Everything below `dir` (a folder deleted or moved away) is not held any more. */
  doneBelow(dir: string): void {
    const prefix = dir === '' ? '' : `${dir}/`;
    for (const p of this.files.keys()) if (p.startsWith(prefix)) this.files.delete(p);
    if (!this.files.size) this.disarm();
  }

  /** Whether the file at `path` must not be sent (or fetched) yet. */
  held(path: string): boolean {
    const w = this.files.get(path);
    return w !== undefined && !w.due;
  }

  /** Files held at `dir` or below it (for a folder sent whole: they are left out of it). */
  heldBelow(dir: string): string[] {
    const prefix = dir === '' ? '' : `${dir}/`;
    const out: string[] = [];
    for (const [p, w] of this.files) if (!w.due && (p.startsWith(prefix) || p === dir)) out.push(p);
    return out;
  }

  /**
   * A cycle decided the due file at `path` (sent it, fetched it, or found nothing to
   * do). Quiet since: it is done. Still being written (a snapshot by age): a new
   * holding period starts.
   */
  taken(path: string): void {
    const w = this.files.get(path);
    if (!w || !w.due) return;
    const t = this.now();
    if (t - w.last >= this.o.quietMs) this.done(path);
    else {
      w.since = t;
      w.due = false;
      this.arm();
    }
  }

  get size(): number {
    return this.files.size;
  }

  stop(): void {
    this.disarm();
    this.files.clear();
  }

  /** Marks what is due now and reports it (exported for tests through tick()). */
  tick(): void {
    const t = this.now();
    const due: string[] = [];
    for (const [p, w] of this.files) {
      if (w.due) continue;
      if (t - w.last >= this.o.quietMs || t - w.since >= this.o.maxDelayMs) {
        w.due = true;
        due.push(p);
      }
    }
    if (due.length) this.o.onDue(due);
  }

  private arm(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.tick();
      if (!this.files.size) this.disarm();
    }, TICK_MS);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
