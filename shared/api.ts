import { z } from 'zod';
import { DIRECTIONS, type PairSettings } from './settings.js';
import type { EngineStatus, LogRecord, TransferProgress } from './status.js';
import type { ErrorInfo } from './errors.js';

/**
 * The engine's local API: every request the CLI (and later the UI) can make,
 * with a runtime schema for its params. The daemon validates every incoming
 * payload against these schemas; a bad payload is refused, never half-applied.
 */

export const AddPairParamsSchema = z.object({
  local: z.string().min(1),
  remote: z.string().min(1),
  id: z.string().optional(),
  direction: z.enum(DIRECTIONS).optional(),
  excludes: z.array(z.string()).optional(),
  bwLimitKBps: z.number().int().min(0).optional(),
  identityFile: z.string().optional(),
  rescanIntervalSec: z.number().int().min(1).optional(),
  /** Create the remote folder when it does not exist. */
  createRemote: z.boolean().optional(),
});
export type AddPairParams = z.infer<typeof AddPairParamsSchema>;

const PairRef = z.object({ pair: z.string().min(1) });
const OptionalPairRef = z.object({ pair: z.string().min(1).optional() });

export const ApiParamSchemas = {
  status: z.object({}),
  list: z.object({}),
  add: AddPairParamsSchema,
  remove: PairRef,
  pause: OptionalPairRef.extend({ forMs: z.number().int().positive().optional() }),
  resume: OptionalPairRef,
  sync: OptionalPairRef,
  log: z.object({ lines: z.number().int().positive().max(100_000).optional(), pair: z.string().optional() }),
  shutdown: z.object({}),
  conflicts: z.object({ pair: z.string().min(1).optional() }),
  resolve: z.object({
    id: z.number().int().positive(),
    pair: z.string().min(1).optional(),
    keep: z.enum(['local', 'remote', 'both']),
  }),
  confirm: PairRef,
} as const;

/** An open conflict: both sides changed `path`; the local version was kept as `copyPath`. */
export interface ConflictInfo {
  id: number;
  pair: string;
  path: string;
  copyPath: string;
  local: { size: number; mtime: number; origin: string };
  remote: { size: number; mtime: number; origin: string };
  createdAt: number;
}

export interface SyncPairResult {
  pair: string;
  ok: boolean;
  filesSent: number;
  filesReceived: number;
  deleted: number;
  renamed: number;
  conflicts: number;
  bytesSent: number;
  error?: ErrorInfo;
  warnings: ErrorInfo[];
}

export interface ApiResults {
  status: EngineStatus;
  list: PairSettings[];
  add: PairSettings;
  remove: { removed: string };
  pause: { paused: string[] };
  resume: { resumed: string[] };
  sync: { results: SyncPairResult[] };
  log: LogRecord[];
  shutdown: { ok: true };
  conflicts: ConflictInfo[];
  resolve: { resolved: number; kept: 'local' | 'remote' | 'both' };
  confirm: { confirmed: string };
}

export type ApiMethod = keyof typeof ApiParamSchemas;
export type ApiParams<M extends ApiMethod> = z.infer<(typeof ApiParamSchemas)[M]>;

/** Events a request may stream before its response (sync progress). */
export interface ApiProgressEvent {
  pair: string;
  progress: TransferProgress;
}

/** Wire format: one JSON object per line. */
export type ApiRequest = { id: number; method: string; params?: unknown };
export type ApiResponse =
  | { id: number; result: unknown }
  | { id: number; error: ErrorInfo }
  | { id: number; event: 'progress'; data: ApiProgressEvent };

export function isApiMethod(m: string): m is ApiMethod {
  return Object.prototype.hasOwnProperty.call(ApiParamSchemas, m);
}
