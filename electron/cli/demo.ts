import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { Engine } from '../engine/engine.js';
import { runDaemon, type DaemonOptions } from './daemon.js';

/**
 * `lipsync demo` (what `npm start` runs until the desktop app exists): a local
 * folder synced to a second local folder, with its own settings and state
 * inside the demo directory so the user's real settings are untouched.
 */
export async function runDemo(dir?: string, opts: DaemonOptions = {}): Promise<number> {
  const base = resolve(dir ?? join(homedir(), 'lipsync-demo'));
  const local = join(base, 'local');
  const server = join(base, 'server');
  const dirs = { configDir: join(base, '.lipsync-demo', 'config'), dataDir: join(base, '.lipsync-demo', 'data') };
  mkdirSync(local, { recursive: true });
  mkdirSync(server, { recursive: true });
  const hello = join(local, 'hello.txt');
  if (!existsSync(hello))
    writeFileSync(hello, 'Edit, add, rename or delete files in this folder and watch ../server follow.\n');
  const engine = new Engine({ dirs, watch: false });
  try {
    if (!engine.list().some((p) => p.id === 'demo')) await engine.add({ local, remote: server, id: 'demo' });
  } finally {
    await engine.stop();
  }
  return runDaemon(
    dirs,
    `lipsync demo: syncing ${local}\n           with ${server} (both ways)\nChange files in either folder and watch the other follow (replaced and deleted versions go to .lipsync/trash). Ctrl-C stops.`,
    opts,
  );
}
