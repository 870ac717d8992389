import { z } from 'zod';
import { BwLimitSchema, COMPRESSION_MODES, DIRECTIONS, type PairSettings } from './settings.js';
import type { EngineStatus, LogRecord, TransferProgress } from './status.js';
import type { ErrorInfo } from './errors.js';
import { SetupParamSchemas, type SetupResults } from './setup.js';

/**
 * The engine's local API: every request the CLI (and later the UI) can make,
 * with a runtime schema for its params. The daemon validates every incoming
 * payload against these schemas; a bad payload is refused, never half-applied.
 */

export const INITIAL_SYNC_MODES = ['merge', 'take-server', 'take-local'] as const;
export type InitialSyncMode = (typeof INITIAL_SYNC_MODES)[number];

/** The settings of a pair that may change after it was added (`update`). */
export const PairPatchSchema = z
  .object({
    direction: z.enum(DIRECTIONS).optional(),
    excludes: z.array(z.string()).max(10_000).optional(),
    bwLimitKBps: BwLimitSchema.optional(),
    compression: z.enum(COMPRESSION_MODES).optional(),
    rescanIntervalSec: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 3600)
      .optional(),
  })
  .strict();
export type PairPatch = z.infer<typeof PairPatchSchema>;

/**
 * A conflict's ID, the same in the CLI, the UI and the local API: the pair's ID, a dash and the
 * conflict's number within that pair ("docs-3"), so no two pairs share one. Pair IDs are lower-case
 * letters, digits and dashes, and the number has no dash, so the last dash splits it back.
 */
export function conflictId(pair: string, seq: number): string {
  return `${pair}-${seq}`;
}

export const CONFLICT_ID_RE = /^(?:([a-z0-9][a-z0-9-]{0,63})-)?([1-9][0-9]{0,15})$/;

/**
 * What a conflict ID names: `docs-3` is conflict 3 of pair docs; a bare number (the IDs shown
 * before they named the pair) is that number in whichever pair has it. Null when it is neither.
 */
export function parseConflictId(id: string | number): { pair?: string; seq: number } | null {
  const m = CONFLICT_ID_RE.exec(String(id));
  if (!m) return null;
  const seq = Number(m[2]);
  if (!Number.isSafeInteger(seq)) return null;
  return m[1] ? { pair: m[1], seq } : { seq };
}

/**
 * Events of the activity log that "Recent changes" lists: changes to files, and sync errors and
 * warnings (so a problem that passed, seen before only in `lipsync log`, is shown with its fix).
 */
export const RECENT_EVENTS = ['push', 'pull', 'delete', 'rename', 'conflict', 'error'] as const;

/** At most this many paths are listed by `previewExcludes`. */
export const PREVIEW_EXCLUDES_LIMIT = 200;

export const AddPairParamsSchema = z.object({
  local: z.string().min(1),
  remote: z.string().min(1),
  id: z.string().optional(),
  direction: z.enum(DIRECTIONS).optional(),
  excludes: z.array(z.string()).optional(),
  bwLimitKBps: BwLimitSchema.optional(),
  compression: z.enum(COMPRESSION_MODES).optional(),
  identityFile: z.string().optional(),
  rescanIntervalSec: z.number().int().min(1).optional(),
  /** Create the remote folder when it does not exist. */
  createRemote: z.boolean().optional(),
  /**
   * How the first sync treats files that exist on both sides: `merge` (default: keep both
   * sides' files, conflicts keep both versions), `take-server` (the server's folder wins),
   * `take-local` (this computer's folder wins; the replaced version goes to that side's
   * trash). Applies only until the pair's first sync completes (docs/sync-semantics.md F1–F3).
   */
  initialSync: z.enum(INITIAL_SYNC_MODES).optional(),
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
    /** "docs-3" (see `conflictId`); a bare number still names conflict 3 of the one pair that has it. */
    id: z.union([
      z.string().regex(CONFLICT_ID_RE, 'must be a conflict ID such as docs-3'),
      z.number().int().positive(),
    ]),
    pair: z.string().min(1).optional(),
    keep: z.enum(['local', 'remote', 'both']),
  }),
  confirm: PairRef,
  /** Change a pair's settings; a change of excludes triggers a rescan. */
  update: PairRef.extend({ patch: PairPatchSchema }),
  /** Which existing local files and folders these exclude patterns would leave out. */
  previewExcludes: PairRef.extend({ excludes: z.array(z.string()).max(10_000) }),
  /** Recent file changes (push, pull, delete, rename, conflict) and sync errors/warnings, newest last. */
  recent: z.object({
    pair: z.string().min(1).optional(),
    limit: z.number().int().positive().max(10_000).optional(),
  }),
  /**
   * What the first sync of a new pair would find (for the setup wizard): counts of paths
   * on one side only, on both sides alike, on both sides different (size or mtime).
   */
  previewInitialSync: z.object({
    local: z.string().min(1),
    remote: z.string().min(1),
    identityFile: z.string().optional(),
  }),
  /**
   * Older and deleted versions kept in both sides' trash, newest first: of `path` (a file,
   * or a folder: everything below it) or of everything, filtered by `query` (part of a name).
   */
  versions: z.object({
    pair: z.string().min(1).optional(),
    path: z.string().max(4096).optional(),
    query: z.string().max(1000).optional(),
    limit: z.number().int().positive().max(100_000).optional(),
  }),
  /**
   * Brings a version (an id from `versions`) back into the local folder, at its own path or
   * at `to` (relative to the pair's folder); what is there now goes to the trash first.
   */
  restore: PairRef.extend({ id: z.string().min(1).max(8192), to: z.string().min(1).max(4096).optional() }),
  /**
   * The setup wizard (shared/setup.ts): testConnection, trustHostKey, listKeys,
   * generateKey, installKey, browseRemote, readKey (any key file), checkLocalFolder.
   */
  ...SetupParamSchemas,
} as const;

export interface PreviewExcludesResult {
  /** Relative paths of existing local files and folders the patterns exclude (first PREVIEW_EXCLUDES_LIMIT). */
  excluded: string[];
  /** How many were found (equals `excluded.length`). */
  count: number;
  /** True when the walk stopped early: more paths may be excluded than listed. */
  truncated: boolean;
}

/**
 * `previewInitialSync`: files and symlinks (not directories) by where they are. Both
 * present with equal size and mtime (to the second) counts as `same`, without reading
 * content; `different` is what a first sync would conflict on (merge) or replace.
 */
export interface PreviewInitialSyncResult {
  localOnly: number;
  remoteOnly: number;
  different: number;
  same: number;
  /** True when the walk stopped early (too many files or too long): the counts are a lower bound. */
  truncated: boolean;
}

/** An open conflict: both sides changed `path`; the local version was kept as `copyPath`. */
export interface ConflictInfo {
  /** Unique across pairs: `conflictId(pair, seq)`, e.g. "docs-3". */
  id: string;
  pair: string;
  /** Its number within the pair (what the pair's log lines and older IDs say). */
  seq: number;
  path: string;
  copyPath: string;
  local: { size: number; mtime: number; origin: string };
  remote: { size: number; mtime: number; origin: string };
  createdAt: number;
}

/** One kept version (`versions`): a file or symlink in one side's trash. */
export interface VersionInfo {
  /** What `restore` takes: `local:` or `remote:` and the path inside that side's trash. */
  id: string;
  pair: string;
  /** Its path in the pair's folder. */
  path: string;
  /** Whose trash holds it: this computer's, or the server's. */
  side: 'local' | 'remote';
  /** When it was replaced or deleted (ms). */
  trashedAt: number;
  size: number;
  /** Its modification time (ms). */
  mtime: number;
  kind: 'file' | 'symlink';
  /** The machine whose trash holds it (this computer's name, or the server's). */
  origin: string;
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

export interface ApiResults extends SetupResults {
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
  resolve: { resolved: string; kept: 'local' | 'remote' | 'both' };
  confirm: { confirmed: string };
  update: PairSettings;
  previewExcludes: PreviewExcludesResult;
  previewInitialSync: PreviewInitialSyncResult;
  recent: LogRecord[];
  versions: VersionInfo[];
  restore: { pair: string; path: string; replacedTo: string | null };
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
