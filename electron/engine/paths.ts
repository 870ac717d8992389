import { homedir } from 'node:os';
import { join } from 'node:path';
import { mkdirSync, chmodSync } from 'node:fs';

/** Where lipsync keeps its settings and its data. One set per user (or per test). */
export interface AppDirs {
  /** Holds config.json, shared by the CLI, the daemon and the desktop app (electron-store uses the same file). */
  configDir: string;
  /** Holds the state databases, ssh control sockets, the API socket, the pid lock and the log. */
  dataDir: string;
}

export function defaultDirs(env: NodeJS.ProcessEnv = process.env): AppDirs {
  const home = homedir();
  const configDir = env.LIPSYNC_CONFIG_DIR || join(env.XDG_CONFIG_HOME || join(home, '.config'), 'lipsync');
  const dataDir = env.LIPSYNC_DATA_DIR || join(env.XDG_DATA_HOME || join(home, '.local', 'share'), 'lipsync');
  return { configDir, dataDir };
}

/** Create a private directory (0700): sockets and state live there. */
export function ensurePrivateDir(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  return dir;
}

export const dataPaths = (dataDir: string) => ({
  socket: join(dataDir, 'lipsync.sock'),
  pidFile: join(dataDir, 'daemon.pid'),
  log: join(dataDir, 'log.jsonl'),
  stateDb: (pairId: string) => join(dataDir, 'state', `${pairId}.db`),
  sshControlDir: join(dataDir, 'ssh'),
});
