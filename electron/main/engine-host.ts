import { Engine } from '../engine/engine.js';
import { ApiServer, acquireDaemonLock, daemonAnswers } from '../engine/api/server.js';
import { dispatch, type DispatchContext } from '../engine/api/dispatch.js';
import { LipsyncError, toErrorInfo } from '../engine/errors.js';
import { dataPaths, ensurePrivateDir, type AppDirs } from '../engine/paths.js';
import type { ValidRequest } from '../../shared/ipc.js';
import type { ErrorInfo } from '../../shared/errors.js';

/**
 * The engine as the desktop app hosts it — the same pieces as `lipsync run`
 * (electron/cli/daemon.ts): the daemon lock, the Engine in watch mode, and the local
 * API on the data dir's socket, so `lipsync status` and friends talk to the app.
 * No Electron in here.
 */
export class EngineHost {
  private stopping: Promise<void> | null = null;

  private constructor(
    readonly engine: Engine,
    private readonly api: ApiServer,
    private readonly lock: { release: () => void },
    readonly dirs: AppDirs,
  ) {}

  /**
   * Take the lock and serve the API. Throws a LipsyncError of kind `daemon-running`
   * when a CLI daemon (or another app) already runs for this user.
   */
  static async start(dirs: AppDirs, onShutdown: () => void): Promise<EngineHost> {
    ensurePrivateDir(dirs.dataDir);
    if (await daemonAnswers(dirs.dataDir)) {
      throw new LipsyncError('daemon-running', 'lipsync is already running for this user (`lipsync run`).', {
        fix: 'Stop it first (`lipsync stop`, or Ctrl-C in its terminal), then start the app again.',
      });
    }
    const lock = acquireDaemonLock(dirs.dataDir);
    let engine: Engine;
    let api: ApiServer;
    try {
      engine = new Engine({ dirs, watch: true });
      api = new ApiServer(engine, dirs.dataDir, onShutdown);
      await api.listen();
    } catch (e) {
      lock.release();
      throw e;
    }
    return new EngineHost(engine, api, lock, dirs);
  }

  /** Start every pair (may take a while: each one connects to its server). */
  async startPairs(): Promise<void> {
    await this.engine.start();
  }

  /** The IPC transport's dispatch: the same switch as the Unix socket and the web server. */
  run(req: ValidRequest, ctx: DispatchContext): Promise<unknown> {
    return dispatch(this.engine, req, ctx);
  }

  toErrorInfo(e: unknown): ErrorInfo {
    return toErrorInfo(e);
  }

  get logFile(): string {
    return dataPaths(this.dirs.dataDir).log;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await this.api.close().catch(() => undefined);
      await this.engine.stop().catch(() => undefined);
      this.lock.release();
    })();
    return this.stopping;
  }
}
