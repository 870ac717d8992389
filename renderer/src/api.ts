/**
 * Typed calls on top of the bridge (shared/api.ts ApiParams/ApiResults, setup methods
 * included), with every rejection turned into an ApiError carrying the engine's ErrorInfo.
 */
import type { ApiMethod, ApiParams, ApiResults } from '../../shared/api.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { LipsyncBridge } from './ipc.js';

export type { InitialSyncMode, PairPatch, PreviewInitialSyncResult } from '../../shared/api.js';
export type { HostKeyInfo, SshKeyInfo, TestConnectionResult } from '../../shared/setup.js';

/** An API failure carrying the engine's ErrorInfo (message + fix). */
export class ApiError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    super(info.message);
    this.name = 'ApiError';
    this.info = info;
  }
}

function isErrorInfo(v: unknown): v is ErrorInfo {
  return typeof v === 'object' && v !== null && typeof (v as ErrorInfo).message === 'string' && 'kind' in v;
}

/** Whatever a bridge rejected with, as an ErrorInfo the views can show (message + fix). */
export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof ApiError) return e.info;
  if (isErrorInfo(e)) return e;
  if (typeof e === 'object' && e !== null) {
    const o = e as { info?: unknown; error?: unknown; message?: unknown };
    if (isErrorInfo(o.info)) return o.info;
    if (isErrorInfo(o.error)) return o.error;
    if (typeof o.message === 'string') {
      // Electron's ipcRenderer.invoke wraps errors: "Error invoking remote method 'x': Error: msg".
      const m = /^Error invoking remote method '[^']*': (?:\w*Error: )?(.*)$/s.exec(o.message);
      const text = m ? (m[1] as string) : o.message;
      try {
        const parsed: unknown = JSON.parse(text);
        if (isErrorInfo(parsed)) return parsed;
      } catch {
        /* not JSON */
      }
      return { kind: 'unknown', message: text };
    }
  }
  return { kind: 'unknown', message: String(e) };
}

export type Api = {
  call<M extends ApiMethod>(method: M, params: ApiParams<M>): Promise<ApiResults[M]>;
  bridge: LipsyncBridge;
};

export function makeApi(bridge: LipsyncBridge): Api {
  return {
    bridge,
    async call(method, params) {
      try {
        return await bridge.call(method, params);
      } catch (e) {
        throw new ApiError(toErrorInfo(e));
      }
    },
  };
}
