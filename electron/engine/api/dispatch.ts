import type { ApiProgressEvent } from '../../../shared/api.js';
import { validateRequest, type IpcResponse, type ValidRequest } from '../../../shared/ipc.js';
import type { Engine } from '../engine.js';
import { LipsyncError, toErrorInfo } from '../errors.js';

/** What a transport offers a request besides its params. */
export interface DispatchContext {
  /** Sync progress of this request (the Unix socket streams it; the web transport has state snapshots). */
  onProgress?: (e: ApiProgressEvent) => void;
  /** Stop the daemon; without it, `shutdown` answers that no daemon is running. */
  onShutdown?: () => void;
}

/**
 * Run one validated request on the engine. The one switch every transport (Unix socket,
 * web, Electron IPC, the CLI without a daemon) goes through.
 */
export async function dispatch(engine: Engine, req: ValidRequest, ctx: DispatchContext = {}): Promise<unknown> {
  const e = engine;
  switch (req.method) {
    case 'status':
      return e.status();
    case 'list':
      return e.list();
    case 'add':
      return e.add(req.params);
    case 'remove':
      return e.remove(req.params.pair);
    case 'pause':
      return e.pause(req.params.pair, req.params.forMs);
    case 'resume':
      return e.resume(req.params.pair);
    case 'sync':
      return {
        results: await e.sync(req.params.pair, (pair, progress) => ctx.onProgress?.({ pair, progress })),
      };
    case 'log':
      return e.logTail(req.params.lines, req.params.pair);
    case 'shutdown':
      if (!ctx.onShutdown) throw new LipsyncError('daemon-unreachable', 'No lipsync daemon is running.');
      setImmediate(ctx.onShutdown);
      return { ok: true };
    case 'conflicts':
      return e.conflicts(req.params.pair);
    case 'resolve':
      return e.resolve(req.params.id, req.params.keep, req.params.pair);
    case 'confirm':
      return e.confirm(req.params.pair);
    case 'update':
      return e.update(req.params.pair, req.params.patch);
    case 'previewExcludes':
      return e.previewExcludes(req.params.pair, req.params.excludes);
    case 'previewInitialSync':
      return e.previewInitialSync(req.params);
    case 'recent':
      return e.recent(req.params.pair, req.params.limit);
    case 'versions':
      return e.versions(req.params);
    case 'restore':
      return e.restore(req.params.pair, req.params.id, req.params.to);
    case 'testConnection':
      return e.testConnection(req.params);
    case 'trustHostKey':
      return e.trustHostKey(req.params);
    case 'listKeys':
      return e.listKeys();
    case 'generateKey':
      return e.generateKey(req.params);
    case 'installKey':
      return e.installKey(req.params);
    case 'browseRemote':
      return e.browseRemote(req.params);
    case 'readKey':
      return e.readKey(req.params);
    case 'checkLocalFolder':
      return e.checkLocalFolder(req.params);
  }
}

/** Validate, then run: `{ result }` or `{ error }`, never a throw. `invalid` tells a refused payload. */
export async function handleRequest(
  engine: Engine,
  method: unknown,
  params: unknown,
  ctx: DispatchContext = {},
): Promise<{ response: IpcResponse; invalid: boolean }> {
  const v = validateRequest(method, params);
  if (!v.ok) return { response: { error: v.error }, invalid: true };
  try {
    return { response: { result: (await dispatch(engine, v, ctx)) as never }, invalid: false };
  } catch (err) {
    return { response: { error: toErrorInfo(err) }, invalid: false };
  }
}
