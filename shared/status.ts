import type { Direction } from './settings.js';
import type { ErrorInfo } from './errors.js';

export type PairState = 'starting' | 'idle' | 'syncing' | 'paused' | 'degraded' | 'error';

export interface TransferProgress {
  /** Files sent in the current run so far, and how many are queued in it. */
  filesDone: number;
  filesTotal: number;
  bytesDone: number;
  /** Bytes per second, as rsync reports it. */
  rateBps: number;
  /** The bytes of the files in the current run, when known (a folder sent whole: not known ahead). */
  bytesTotal?: number;
  /** The file being transferred now (the first of the run not reported done yet), when known. */
  currentFile?: string;
  /** Seconds left in the current run at the current rate, when the total is known. */
  etaSec?: number;
}

/** Seconds left for `left` bytes at `rateBps`; undefined when it cannot be told. */
export function etaSeconds(left: number, rateBps: number): number | undefined {
  if (!(rateBps > 0) || left < 0) return undefined;
  return Math.ceil(left / rateBps);
}

export interface PairStatus {
  id: string;
  local: string;
  remote: string;
  direction: Direction;
  state: PairState;
  /** Why the pair is degraded, in error, or paused. */
  reason?: ErrorInfo;
  pausedUntil: number | null;
  watcher: 'walkwatch' | 'inotifywait' | 'parcel' | 'none';
  /** How the server's changes reach us: streamed (inotify), polled, or not at all (send-only). */
  remoteWatcher: 'inotify' | 'poll' | 'disconnected' | 'none';
  /** Open conflicts (both versions kept; see `lipsync conflicts`). */
  conflicts: number;
  /** Files and directories the state database knows. */
  entries: number;
  /** Paths waiting to be synced. */
  pending: number;
  lastSyncAt: number | null;
  lastError?: ErrorInfo;
  progress?: TransferProgress;
  warnings: ErrorInfo[];
}

export interface EngineStatus {
  pid: number;
  version: string;
  startedAt: number;
  pairs: PairStatus[];
}

/** One line of the activity log (`lipsync log`), also what "Recent changes" shows. */
export interface LogRecord {
  t: number;
  pair: string;
  level: 'info' | 'warn' | 'error';
  /** push: files sent; delete: removed remotely (kept in trash); rename: moved remotely. */
  event: 'push' | 'pull' | 'delete' | 'rename' | 'conflict' | 'mkdir' | 'scan' | 'error' | 'state' | 'start' | 'stop';
  msg: string;
  paths?: string[];
  from?: string;
  to?: string;
  bytes?: number;
}
