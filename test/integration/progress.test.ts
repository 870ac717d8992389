/**
 * Issue 16 §2: progress is told by bytes, with the file being sent, the total and the
 * time left (a 3 MiB file at a 500 KiB/s limit is not "100 %" from its first second).
 * Real daemon, rsync and sshd.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { cli, requireBuild, waitFor } from '../support/cli.js';
import {
  makeClient,
  makeServerDir,
  pairStatus,
  patchConfig,
  start,
  stop,
  waitIdle,
  type Client,
} from '../support/twoway.js';

let server: SshServer;
const running: Client[] = [];

beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  for (const c of running) await stop(c);
  await server?.stop();
});

describe('transfer progress', { timeout: 90_000 }, () => {
  it('goes by bytes, names the file and tells the time left', async () => {
    const c = await makeClient(server, makeServerDir(), 'a');
    patchConfig(c.e, {}, { bwLimitKBps: 500 });
    running.push(c);
    await start(c);
    await waitIdle(c);
    const size = 3 * 1024 * 1024;
    writeFileSync(join(c.local, 'big.bin'), randomBytes(size));
    const seen: Record<string, unknown>[] = [];
    await waitFor(
      async () => {
        const p = (await pairStatus(c)).progress as Record<string, unknown> | undefined;
        if (p && typeof p.bytesDone === 'number' && p.bytesDone > 0 && p.bytesDone < size) seen.push(p);
        // Mid-transfer, once rsync has measured a rate.
        return seen.some((x) => (x.rateBps as number) > 0);
      },
      30_000,
      () => `two progress reports in the middle of the transfer; seen ${JSON.stringify(seen)}`,
    );
    for (const p of seen) {
      expect(p.bytesTotal).toBe(size);
      expect(p.currentFile).toBe('big.bin');
      expect(p.filesTotal).toBe(1);
      // Not "1/1 files" while the file's bytes are still on their way.
      expect(p.filesDone).toBe(0);
    }
    const measured = seen.find((x) => (x.rateBps as number) > 0)!;
    expect(typeof measured.etaSec, JSON.stringify(seen)).toBe('number');
    expect(measured.etaSec as number).toBeGreaterThan(0);
    // The time left fits the bytes left at the limit (500 KiB/s), within rsync's rate rounding.
    expect(measured.etaSec as number).toBeLessThanOrEqual(
      Math.ceil((size - (measured.bytesDone as number)) / (400 * 1024)),
    );
    // `lipsync sync` now waits for that transfer and reports it (not "0 files sent").
    const r = await cli(c.e, ['sync', c.pair], 90_000);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/docs: synced — 1 file sent \(3(\.0)? MiB of data\)/);
    await waitIdle(c, 60_000);
  });
});
