/**
 * Issue 16 §5: `lipsync status` without a running daemon shows the problem each pair's
 * last run ended with (a one-shot sync stopped by the mass-delete guard left it "idle").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, requireBuild } from '../support/cli.js';
import { makeClient, makeServerDir, pairStatus, status, sync, syncOk } from '../support/twoway.js';

let server: SshServer;

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  await server?.stop();
});

describe('status without a daemon', { timeout: 90_000 }, () => {
  it('shows the mass-delete pause a one-shot sync ended with, until confirmed', async () => {
    const c = await makeClient(server, makeServerDir(), 'a');
    for (const n of ['a', 'b', 'c', 'd', 'e']) writeFileSync(join(c.local, `${n}.txt`), n);
    await syncOk(c);
    for (const n of ['a', 'b', 'c', 'd']) rmSync(join(c.local, `${n}.txt`));
    const r = await sync(c);
    expect(r.code).not.toBe(0);
    expect((await status(c)).daemon).toBe(false);
    const p = await pairStatus(c);
    expect(p.state).toBe('paused');
    expect(p.reason?.message).toMatch(/would delete 4 of 5 files/);
    expect(p.reason?.fix).toMatch(/lipsync confirm docs/);
    const ok = await cli(c.e, ['confirm', c.pair]);
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    expect((await pairStatus(c)).state).toBe('idle');
  });

  it('shows the error the last one-shot sync ended with', async () => {
    const remote = makeServerDir();
    const c = await makeClient(server, remote, 'b');
    await syncOk(c);
    rmSync(join(remote, '.lipsync'), { recursive: true });
    expect((await sync(c)).code).not.toBe(0);
    const p = await pairStatus(c);
    expect(p.state).toBe('error');
    expect(p.lastError ?? p.reason).toBeTruthy();
    expect(JSON.stringify(p)).toMatch(/lost its lipsync marker/);
  });
});
