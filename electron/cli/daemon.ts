import { Engine, VERSION } from '../engine/engine.js';
import { ApiServer, acquireDaemonLock, daemonAnswers } from '../engine/api/server.js';
import { ensurePrivateDir, type AppDirs } from '../engine/paths.js';
import { formatLogRecord } from '../engine/log.js';
import { LipsyncError } from '../engine/errors.js';
import type { WebServer } from '../engine/api/web.js';

export interface DaemonOptions {
  /** Also serve the web UI and its API on 127.0.0.1:port (`lipsync run --web`). */
  web?: { port: number; rendererDir?: string };
}

/** `lipsync run`: the foreground daemon for all pairs. Resolves with the exit code once stopped. */
export async function runDaemon(dirs: AppDirs, banner?: string, opts: DaemonOptions = {}): Promise<number> {
  ensurePrivateDir(dirs.dataDir);
  if (await daemonAnswers(dirs.dataDir)) {
    throw new LipsyncError('daemon-running', 'lipsync is already running for this user.', {
      fix: 'Use `lipsync status` to see it, `lipsync stop` to stop it.',
    });
  }
  const lock = acquireDaemonLock(dirs.dataDir);
  let stopping: Promise<void> | null = null;
  let wake: () => void = () => undefined;
  const stopped = new Promise<void>((r) => (wake = r));
  const engine = new Engine({ dirs, watch: true, echo: (r) => console.log(formatLogRecord(r)) });
  const api = new ApiServer(engine, dirs.dataDir, () => void stop());
  // Loaded only for --web: it pulls in `ws`, memory the plain daemon does not need.
  const web: WebServer | null = opts.web
    ? new (await import('../engine/api/web.js')).WebServer({
        engine,
        dataDir: dirs.dataDir,
        port: opts.web.port,
        rendererDir: opts.web.rendererDir,
        onShutdown: () => void stop(),
      })
    : null;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      console.log('lipsync: stopping…');
      await web?.close().catch(() => undefined);
      await api.close().catch(() => undefined);
      await engine.stop().catch(() => undefined);
      lock.release();
      wake();
    })();
    return stopping;
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  process.on('SIGHUP', () => void stop());
  try {
    await api.listen();
    await web?.listen();
    await engine.start();
  } catch (e) {
    await stop();
    throw e;
  }
  const n = engine.list().length;
  console.log(
    banner ?? `lipsync ${VERSION} running (pid ${process.pid}), ${n} pair${n === 1 ? '' : 's'}. Ctrl-C stops.`,
  );
  if (web) console.log(`web UI: ${web.url}\n        (this address holds a secret token: share it with no one)`);
  await stopped;
  console.log('lipsync: stopped.');
  // Everything was stopped above; a handle that still lingers (a child that ignored its
  // signal) must not keep the process alive: children die with us (parent-death signal).
  setTimeout(() => process.exit(0), 1500).unref();
  return 0;
}
