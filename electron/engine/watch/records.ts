/**
 * The record format inotifywait prints (`--format '%e%0%w%f%0' --no-newline`) and
 * walkwatch prints too (watch/walkwatch.ts): its parser and what a record means.
 * Shared by both backends, here and on the server (remote/watch.ts).
 */
import { NulFieldSplitter } from '../proc/split.js';
import type { WatchEvent, WatchEventKind } from './watcher.js';

/** One record of inotifywait output: event names (e.g. ['CREATE', 'ISDIR']) and the full path. */
export interface InotifyRecord {
  events: string[];
  path: string;
}

/**
 * Splits inotifywait output (INOTIFY_FORMAT) into records. Pure and
 * incremental: push() accepts chunks cut anywhere (even inside a field or a
 * UTF-8 sequence) and returns the records completed by that chunk.
 */
export class InotifyRecordParser {
  private readonly fields = new NulFieldSplitter();
  private eventsField: string | null = null;

  push(chunk: Buffer): InotifyRecord[] {
    const out: InotifyRecord[] = [];
    for (const field of this.fields.push(chunk)) {
      if (this.eventsField === null) {
        this.eventsField = field;
      } else {
        out.push({ events: this.eventsField.split(','), path: field });
        this.eventsField = null;
      }
    }
    return out;
  }

  /** Bytes held for an incomplete record. */
  pendingBytes(): number {
    return this.fields.pendingBytes() + (this.eventsField?.length ?? 0);
  }
}

const KIND_OF: Record<string, WatchEventKind> = {
  CREATE: 'create',
  CLOSE_WRITE: 'modify',
  MODIFY: 'write',
  DELETE: 'delete',
  MOVED_FROM: 'move-from',
  MOVED_TO: 'move-to',
  ATTRIB: 'attrib',
};

/** What a record means to the watcher. */
export type RecordMeaning =
  | { type: 'event'; event: WatchEvent }
  | { type: 'overflow' }
  /** The root itself was deleted, moved or unmounted: nothing is watched any more. */
  | { type: 'root-gone'; reason: 'DELETE_SELF' | 'MOVE_SELF' | 'UNMOUNT' }
  | { type: 'ignore' };

/**
 * Interprets one record for a root (absolute, no trailing slash). Self events
 * of subfolders are ignored (their parent reports DELETE / MOVED_*).
 */
export function interpretRecord(rec: InotifyRecord, root: string): RecordMeaning {
  if (rec.events.includes('Q_OVERFLOW')) return { type: 'overflow' };
  const rel = relativeTo(rec.path, root);
  if (rel === null) return { type: 'ignore' };
  for (const self of ['DELETE_SELF', 'MOVE_SELF', 'UNMOUNT'] as const) {
    if (rec.events.includes(self)) return rel === '' ? { type: 'root-gone', reason: self } : { type: 'ignore' };
  }
  const isDir = rec.events.includes('ISDIR');
  for (const name of rec.events) {
    const kind = KIND_OF[name];
    if (kind !== undefined) return { type: 'event', event: { path: rel, kind, isDir } };
  }
  return { type: 'ignore' };
}

/** `path` relative to `root` (both absolute), '' for the root itself; null when outside it. */
export function relativeTo(path: string, root: string): string | null {
  const prefix = root.endsWith('/') ? root : `${root}/`;
  if (path === root || path === prefix) return '';
  return path.startsWith(prefix) ? path.slice(prefix.length).replace(/\/+$/, '') : null;
}
