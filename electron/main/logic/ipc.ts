import { validateRequest } from '../../../shared/ipc.js';
import type { IpcResponse, ValidRequest } from '../../../shared/ipc.js';
import type { ErrorInfo } from '../../../shared/errors.js';
import { isTrustedSender } from './trust.js';

/** Runs one validated request: the engine's shared dispatch (electron/engine/api/dispatch.ts). */
export type Dispatch = (req: ValidRequest) => Promise<unknown>;

/** Turns anything thrown into the ErrorInfo that crosses the bridge. */
export type ToErrorInfo = (e: unknown) => ErrorInfo;

const fallbackErrorInfo: ToErrorInfo = (e) => ({
  kind: 'unknown',
  message: e instanceof Error ? e.message : String(e),
});

/**
 * The main process's one request handler (`ipcMain.handle(REQUEST_CHANNEL, …)`),
 * with no Electron in it:
 *   1. the sender's frame URL must be one of the app's pages (else refused);
 *   2. the payload must be `{ method, params }` and pass `validateRequest` (shared/ipc.ts):
 *      an unknown method or bad params is refused with an error and nothing runs;
 *   3. only then the engine runs it (the same `dispatch` as the Unix socket and the web
 *      transport), with the parsed params.
 * Errors travel as `{ error }` (Electron strips custom fields of thrown errors).
 */
export async function handleRequest(
  senderUrl: string | null | undefined,
  allowed: readonly string[],
  payload: unknown,
  dispatch: Dispatch,
  toErrorInfo: ToErrorInfo = fallbackErrorInfo,
): Promise<IpcResponse> {
  if (!isTrustedSender(senderUrl, allowed)) {
    return {
      error: { kind: 'permission-denied', message: 'Request refused: it did not come from the lipsync window.' },
    };
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    return {
      error: { kind: 'invalid-settings', message: 'Malformed request: expected { method, params }.' },
    };
  }
  const { method, params } = payload as { method?: unknown; params?: unknown };
  const v = validateRequest(method, params);
  if (!v.ok) return { error: v.error };
  try {
    return { result: (await dispatch(v)) as never };
  } catch (e) {
    return { error: toErrorInfo(e) };
  }
}
