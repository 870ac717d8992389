import { appendFileSync, existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import type { LogRecord } from '../../shared/status.js';

const MAX_BYTES = 10 * 1024 * 1024;

/**
 * The activity log: one JSON record per line in the data dir, rotated at 10 MiB
 * (one old file kept). It is what `lipsync log` prints and what tests read to
 * see exactly what was sent, deleted and renamed.
 */
export class ActivityLog {
  private listeners = new Set<(r: LogRecord) => void>();

  constructor(
    private readonly file: string,
    private readonly echo?: (r: LogRecord) => void,
  ) {}

  write(rec: Omit<LogRecord, 't'>): void {
    const full: LogRecord = { t: Date.now(), ...rec };
    try {
      if (existsSync(this.file) && statSync(this.file).size > MAX_BYTES) renameSync(this.file, `${this.file}.1`);
      appendFileSync(this.file, JSON.stringify(full) + '\n', { mode: 0o600 });
    } catch {
      // A log that cannot be written must not stop syncing; the echo still shows it.
    }
    this.echo?.(full);
    for (const l of this.listeners) l(full);
  }

  onRecord(l: (r: LogRecord) => void): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }

  /** The last `lines` records, optionally of one pair. */
  tail(lines = 50, pair?: string): LogRecord[] {
    return readLog(this.file, lines, pair);
  }
}

export function readLog(file: string, lines = 50, pair?: string): LogRecord[] {
  const out: LogRecord[] = [];
  for (const f of [`${file}.1`, file]) {
    if (!existsSync(f)) continue;
    for (const line of readFileSync(f, 'utf8').split('\n')) {
      if (!line) continue;
      try {
        const r = JSON.parse(line) as LogRecord;
        if (!pair || r.pair === pair) out.push(r);
      } catch {
        // a torn last line after a crash: skip it
      }
    }
  }
  return out.slice(-lines);
}

/** One line for a terminal. */
export function formatLogRecord(r: LogRecord): string {
  const time = new Date(r.t).toISOString().replace('T', ' ').slice(0, 19);
  return `${time} ${r.level.padEnd(5)} [${r.pair}] ${r.msg}`;
}
