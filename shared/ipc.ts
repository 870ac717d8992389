import { z } from 'zod';
import { ApiParamSchemas, isApiMethod, type ApiMethod, type ApiParams, type ApiResults } from './api.js';
import { ERROR_KINDS, type ErrorInfo } from './errors.js';
import { DIRECTIONS } from './settings.js';
import type { EngineStatus, LogRecord, PairStatus, TransferProgress } from './status.js';

/**
 * THE contract between the engine and every UI (the Electron renderer through the
 * preload bridge, or the same renderer in a browser through `lipsync run --web`).
 *
 * Requests: one channel. The payload is `{ method, params }` (an `IpcRequest`); the
 * answer is `{ result }` or `{ error }` (an `IpcResponse`). Every method, its params
 * schema and its result type are in shared/api.ts (`ApiParamSchemas`, `ApiResults`);
 * `validateRequest` below is the one check both transports run before anything is done,
 * so a bad payload is refused, never half-applied.
 *
 * Events: the engine pushes
 *   - `state`: a whole `EngineStatus` snapshot, coalesced (at most one every ~100 ms),
 *     and one right after a UI connects;
 *   - `log`: each activity-log record as it is written.
 * Their runtime schemas are `EVENT_SCHEMAS`.
 *
 * Transports:
 *   - Electron: `ipcRenderer.invoke(REQUEST_CHANNEL, IpcRequest)` → `IpcResponse`
 *     (errors travel as `{ error }`, because Electron strips custom fields of thrown
 *     errors); events are sent on `EVENT_CHANNELS.state` / `EVENT_CHANNELS.log`.
 *   - Browser (`lipsync run --web`): `POST WEB_PATHS.call` with `Authorization: Bearer TOKEN`
 *     and an `IpcRequest` body → `IpcResponse` (HTTP 400 for an invalid payload);
 *     WebSocket `WEB_PATHS.events` with the token as subprotocol `lipsync.TOKEN`
 *     (or `?token=TOKEN`) → `WebEventMessage` frames (JSON).
 *
 * No Node or DOM imports here: this file is compiled into the engine, the preload
 * script and the renderer alike.
 */

// ---------------------------------------------------------------- channels

/** The one request/response channel (Electron `ipcMain.handle`). */
export const REQUEST_CHANNEL = 'lipsync:request';

/** Channels of the events the engine pushes (Electron `webContents.send`). */
export const EVENT_CHANNELS = { state: 'lipsync:state', log: 'lipsync:log' } as const;
export type EventName = keyof typeof EVENT_CHANNELS;

/**
 * Desktop only: open a file or folder inside a pair's local folder with the default app
 * (`ipcRenderer.invoke(OPEN_PATH_CHANNEL, path)` → `IpcOpenPathResponse`). Main checks the
 * sender and that the realpath lies inside a configured pair's local folder.
 */
export const OPEN_PATH_CHANNEL = 'lipsync:open-path';

/**
 * Desktop only: show a file or folder inside a pair's local folder in the file manager
 * (`ipcRenderer.invoke(SHOW_IN_FOLDER_CHANNEL, path)` → `IpcOpenPathResponse`), with the
 * same checks as OPEN_PATH_CHANNEL.
 */
export const SHOW_IN_FOLDER_CHANNEL = 'lipsync:show-in-folder';

/**
 * Desktop only: the platform's folder picker (`ipcRenderer.invoke(PICK_FOLDER_CHANNEL)` →
 * `IpcPickFolderResponse`: the chosen folder's absolute path, or null when the user
 * cancelled). Main checks the sender. The renderer offers "Choose…" only when its bridge
 * says `canPickFolder` (renderer/src/ipc.ts); elsewhere (the web UI) a text field.
 */
export const PICK_FOLDER_CHANNEL = 'lipsync:pick-folder';

/** HTTP paths of the web transport (`lipsync run --web`). */
export const WEB_PATHS = { call: '/api/call', events: '/api/events' } as const;

/** Default port of `lipsync run --web` (on 127.0.0.1 only). */
export const DEFAULT_WEB_PORT = 7841;

/**
 * WebSocket subprotocols: a browser cannot set an Authorization header on a WebSocket,
 * so it offers `['lipsync', 'lipsync.' + token]`; the server answers with `lipsync`.
 */
export const WEB_PROTOCOL = 'lipsync';
export const WEB_TOKEN_PROTOCOL_PREFIX = 'lipsync.';

// ---------------------------------------------------------------- payloads

export interface IpcRequest<M extends ApiMethod = ApiMethod> {
  method: M;
  params: ApiParams<M>;
}

export type IpcResponse<M extends ApiMethod = ApiMethod> = { result: ApiResults[M] } | { error: ErrorInfo };

export type IpcOpenPathResponse = { ok: true } | { error: ErrorInfo };

export type IpcPickFolderResponse = { path: string | null } | { error: ErrorInfo };

/** A frame on the web transport's event socket. */
export type WebEventMessage = { type: 'state'; data: EngineStatus } | { type: 'log'; data: LogRecord };

/** What the renderer uses: the preload bridge in Electron, the web client in a browser. */
export interface LipsyncBridge {
  /** Runs one API method. Rejects with an `IpcError` (its `info` is the engine's ErrorInfo). */
  call<M extends ApiMethod>(method: M, params: ApiParams<M>): Promise<ApiResults[M]>;
  /** Every state snapshot (the first one soon after subscribing); returns an unsubscribe function. */
  onState(cb: (s: EngineStatus) => void): () => void;
  /** Every activity-log record as it is written; returns an unsubscribe function. */
  onLog(cb: (r: LogRecord) => void): () => void;
}

/** The error a bridge's `call` rejects with. */
export class IpcError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'IpcError';
    this.info = info;
  }
}

/** Turn an `IpcResponse` into the result, or throw an `IpcError`. */
export function unwrapResponse<M extends ApiMethod>(res: IpcResponse<M>): ApiResults[M] {
  if ('error' in res) throw new IpcError(res.error);
  return res.result;
}

// ---------------------------------------------------------------- runtime schemas of events

export const ErrorInfoSchema = z.object({
  kind: z.enum(ERROR_KINDS),
  message: z.string(),
  fix: z.string().optional(),
  files: z.array(z.string()).optional(),
  detail: z.string().optional(),
});

export const TransferProgressSchema = z.object({
  filesDone: z.number(),
  filesTotal: z.number(),
  bytesDone: z.number(),
  rateBps: z.number(),
  bytesTotal: z.number().optional(),
  currentFile: z.string().optional(),
  etaSec: z.number().optional(),
});

export const PairStatusSchema = z.object({
  id: z.string(),
  local: z.string(),
  remote: z.string(),
  direction: z.enum(DIRECTIONS),
  state: z.enum(['starting', 'idle', 'syncing', 'paused', 'degraded', 'error']),
  reason: ErrorInfoSchema.optional(),
  pausedUntil: z.number().nullable(),
  watcher: z.enum(['walkwatch', 'inotifywait', 'parcel', 'none']),
  remoteWatcher: z.enum(['inotify', 'poll', 'disconnected', 'none']),
  conflicts: z.number(),
  entries: z.number(),
  pending: z.number(),
  lastSyncAt: z.number().nullable(),
  lastError: ErrorInfoSchema.optional(),
  progress: TransferProgressSchema.optional(),
  warnings: z.array(ErrorInfoSchema),
});

export const EngineStatusSchema = z.object({
  pid: z.number(),
  version: z.string(),
  startedAt: z.number(),
  pairs: z.array(PairStatusSchema),
});

export const LogRecordSchema = z.object({
  t: z.number(),
  pair: z.string(),
  level: z.enum(['info', 'warn', 'error']),
  event: z.enum(['push', 'pull', 'delete', 'rename', 'conflict', 'mkdir', 'scan', 'error', 'state', 'start', 'stop']),
  msg: z.string(),
  paths: z.array(z.string()).optional(),
  from: z.string().optional(),
  to: z.string().optional(),
  bytes: z.number().optional(),
});

/** The runtime schema of each event's payload. */
export const EVENT_SCHEMAS = { state: EngineStatusSchema, log: LogRecordSchema } as const;

export const WebEventMessageSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('state'), data: EngineStatusSchema }),
  z.object({ type: z.literal('log'), data: LogRecordSchema }),
]);

// The schemas and the interfaces in shared/status.ts must describe the same shapes.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const sameShapes: [
  Same<z.infer<typeof ErrorInfoSchema>, ErrorInfo>,
  Same<z.infer<typeof TransferProgressSchema>, TransferProgress>,
  Same<z.infer<typeof PairStatusSchema>, PairStatus>,
  Same<z.infer<typeof EngineStatusSchema>, EngineStatus>,
  Same<z.infer<typeof LogRecordSchema>, LogRecord>,
  Same<z.infer<typeof WebEventMessageSchema>, WebEventMessage>,
] = [true, true, true, true, true, true];
void sameShapes;

// ---------------------------------------------------------------- request validation

/** A request that passed `validateRequest`: the method and its parsed params, correlated. */
export type ValidRequest = { [M in ApiMethod]: { ok: true; method: M; params: ApiParams<M> } }[ApiMethod];

/** One line per problem, each naming the field (`patch.bwLimitKBps: …`). */
export function describeIssues(err: z.ZodError): string {
  return err.issues
    .map((i) => {
      const field = i.path.length ? i.path.map(String).join('.') : '(params)';
      return `${field}: ${i.message}`;
    })
    .join('\n');
}

/**
 * Check a request from any transport before anything is done: the method must exist
 * and the params must match its schema (missing params mean `{}`). On success the
 * parsed params are returned (defaults applied, unknown keys of plain objects dropped).
 */
export function validateRequest(method: unknown, params: unknown): ValidRequest | { ok: false; error: ErrorInfo } {
  if (typeof method !== 'string' || !method) {
    return { ok: false, error: { kind: 'invalid-settings', message: 'method: must be the name of an API method.' } };
  }
  if (!isApiMethod(method)) {
    return {
      ok: false,
      error: {
        kind: 'invalid-settings',
        message: `method: unknown method "${method.slice(0, 100)}".`,
        fix: `Known methods: ${Object.keys(ApiParamSchemas).join(', ')}.`,
      },
    };
  }
  const parsed = ApiParamSchemas[method].safeParse(params ?? {});
  if (!parsed.success) {
    return {
      ok: false,
      error: {
        kind: 'invalid-settings',
        message: `Invalid parameters for ${method}:\n${describeIssues(parsed.error)}`,
      },
    };
  }
  return { ok: true, method, params: parsed.data } as ValidRequest;
}
