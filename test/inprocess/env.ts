/**
 * The in-process tests' fixture: per test a temp dir with a local folder, a server folder
 * (a local-path remote, its meta dirs made), a real state database and an activity log.
 */
import { afterEach, beforeEach } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateDb } from '../../electron/engine/state/db.js';
import { ActivityLog } from '../../electron/engine/log.js';
import { parseRemote } from '../../electron/engine/remote/spec.js';
import { remoteOps, type RemoteOps } from '../../electron/engine/remote/ops.js';

export interface InprocessEnv {
  dir: string;
  local: string;
  server: string;
  db: StateDb;
  ops: RemoteOps;
  log: ActivityLog;
}

/** Registers beforeEach/afterEach making a fresh InprocessEnv per test (filled in place). */
export function useInprocessEnv(tempPrefix: string): InprocessEnv {
  const env = {} as InprocessEnv;
  beforeEach(async () => {
    const dir = mkdtempSync(join(tmpdir(), tempPrefix));
    const local = join(dir, 'local');
    const server = join(dir, 'server');
    mkdirSync(local);
    mkdirSync(server);
    const ops = remoteOps(parseRemote(server), { controlDir: join(dir, 'ssh') });
    await ops.prepareMeta('test-');
    Object.assign(env, {
      dir,
      local,
      server,
      db: StateDb.open(join(dir, 'state.db')),
      ops,
      log: new ActivityLog(join(dir, 'log')),
    });
  });
  afterEach(async () => {
    env.db.close();
    await env.ops.close().catch(() => undefined);
    rmSync(env.dir, { recursive: true, force: true });
  });
  return env;
}
