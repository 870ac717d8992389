import type * as Ipc from '../../shared/ipc.js';
import type { IpcOpenPathResponse, IpcPickFolderResponse, IpcResponse, LipsyncBridge } from '../../shared/ipc.js';
import type { ErrorInfo } from '../../shared/errors.js';
import type { EngineStatus, LogRecord } from '../../shared/status.js';

// The channel names of shared/ipc.ts, restated so the sandboxed preload does not bundle
// shared/ipc.ts (and zod with it): the type annotations make tsc fail if they drift.
export const REQUEST_CHANNEL: typeof Ipc.REQUEST_CHANNEL = 'lipsync:request';
export const EVENT_CHANNELS: typeof Ipc.EVENT_CHANNELS = { state: 'lipsync:state', log: 'lipsync:log' };
export const OPEN_PATH_CHANNEL: typeof Ipc.OPEN_PATH_CHANNEL = 'lipsync:open-path';
export const SHOW_IN_FOLDER_CHANNEL: typeof Ipc.SHOW_IN_FOLDER_CHANNEL = 'lipsync:show-in-folder';
export const PICK_FOLDER_CHANNEL: typeof Ipc.PICK_FOLDER_CHANNEL = 'lipsync:pick-folder';

/** The desktop bridge: the shared contract plus `openPath` and `showInFolder` (renderer/src/ipc.ts shows "Open" when they exist). */
export type DesktopBridge = LipsyncBridge & {
  /** Open a file or folder inside a pair's local folder with the default app (main checks the path). */
  openPath(path: string): Promise<void>;
  /** Show a file or folder inside a pair's local folder in the file manager (main checks the path). */
  showInFolder(path: string): Promise<void>;
  /** Capability flag: this bridge has the platform's folder picker (`pickFolder`). */
  canPickFolder: true;
  /** The platform's folder dialog: the chosen folder's absolute path, or null when cancelled. */
  pickFolder(): Promise<string | null>;
};

/** The same shape as shared/ipc.ts `IpcError` (`info` holds the engine's ErrorInfo). */
export class BridgeError extends Error {
  readonly info: ErrorInfo;
  constructor(info: ErrorInfo) {
    // contextBridge copies only `message` into the page: it carries the ErrorInfo as JSON.
    super(JSON.stringify(info));
    this.name = 'IpcError';
    this.info = info;
  }
}

/** The part of `ipcRenderer` the bridge needs (so it is tested with a fake and never exposed). */
export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, ...args: unknown[]) => void): unknown;
}

/**
 * `window.lipsync`: the renderer's only way to the engine (and, with `openPath`, to
 * opening a synced file: OPEN_PATH_CHANNEL, checked by main). It sends `{ method, params }`
 * on REQUEST_CHANNEL (main validates it and checks the sender) and relays the state
 * and log events; the Electron event object is never handed to the page, nor is
 * ipcRenderer itself.
 *
 * A failed call rejects with a `BridgeError` (named IpcError, with `info`). contextBridge
 * copies only the `message` of an Error into the page, so that message is the ErrorInfo
 * as JSON (renderer/src/api.ts `toErrorInfo` parses it back into kind, message and fix).
 */
export function createBridge(ipc: IpcRendererLike): DesktopBridge {
  const subscribe = <T>(channel: string, cb: (v: T) => void): (() => void) => {
    if (typeof cb !== 'function') throw new TypeError('expected a callback function');
    const listener = (_event: unknown, payload: unknown) => cb(payload as T);
    ipc.on(channel, listener);
    let done = false;
    return () => {
      if (done) return;
      done = true;
      ipc.removeListener(channel, listener);
    };
  };
  const pathRequest = async (channel: string, path: string): Promise<void> => {
    if (typeof path !== 'string') throw new TypeError('expected a path');
    const res = (await ipc.invoke(channel, path)) as IpcOpenPathResponse | undefined;
    if (!res || typeof res !== 'object') {
      throw new BridgeError({ kind: 'unknown', message: 'No answer from the lipsync main process.' });
    }
    if ('error' in res) throw new BridgeError(res.error);
  };
  return {
    async call(method, params) {
      const res = (await ipc.invoke(REQUEST_CHANNEL, { method, params })) as IpcResponse | undefined;
      if (!res || typeof res !== 'object') {
        throw new BridgeError({ kind: 'unknown', message: 'No answer from the lipsync main process.' });
      }
      if ('error' in res) throw new BridgeError(res.error);
      return res.result as never;
    },
    onState: (cb) => subscribe<EngineStatus>(EVENT_CHANNELS.state, cb),
    onLog: (cb) => subscribe<LogRecord>(EVENT_CHANNELS.log, cb),
    openPath: (path) => pathRequest(OPEN_PATH_CHANNEL, path),
    showInFolder: (path) => pathRequest(SHOW_IN_FOLDER_CHANNEL, path),
    canPickFolder: true,
    async pickFolder() {
      const res = (await ipc.invoke(PICK_FOLDER_CHANNEL)) as IpcPickFolderResponse | undefined;
      if (!res || typeof res !== 'object') {
        throw new BridgeError({ kind: 'unknown', message: 'No answer from the lipsync main process.' });
      }
      if ('error' in res) throw new BridgeError(res.error);
      return typeof res.path === 'string' ? res.path : null;
    },
  };
}
