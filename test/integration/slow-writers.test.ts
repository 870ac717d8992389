/**
 * Issue 15, item 1: a file that is still being written is never sent half-done,
 * and a single writer never conflicts with itself. Real daemons (walkwatch here
 * and on the server), real rsync over the test sshd; the writers write in pieces
 * with a flush between them, as a download or a log does.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  appendFileSync,
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { requireBuild, waitFor } from '../support/cli.js';
import {
  liveFiles,
  makeClient,
  makeServerDir,
  patchConfig,
  sha256,
  sync,
  syncOk,
  sleep,
  start,
  stop,
  trashFiles,
  waitIdle,
  waitStreaming,
  type Client,
} from '../support/twoway.js';
import { makeSentinel, sentinelIntact, sentinelLeaks } from '../support/sentinel.js';

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

/** Two two-way clients with live daemons on a fresh server folder, both streaming its changes. */
async function twoLiveClients(config: Record<string, unknown> = {}): Promise<{ a: Client; b: Client; remote: string }> {
  const remote = makeServerDir();
  const a = await makeClient(server, remote, 'a');
  const b = await makeClient(server, remote, 'b');
  for (const c of [a, b]) {
    if (Object.keys(config).length) patchConfig(c.e, config);
    running.push(c);
    await start(c);
  }
  for (const c of [a, b]) {
    await waitStreaming(c);
    await waitIdle(c);
  }
  return { a, b, remote };
}

/** Writes `data` to `file` in `piece`-byte writes, each flushed, `gapMs` apart; closes at the end. */
async function writeSlowly(file: string, data: Buffer, piece: number, gapMs: number): Promise<void> {
  const fd = openSync(file, 'w');
  try {
    for (let at = 0; at < data.length; at += piece) {
      writeSync(fd, data, at, Math.min(piece, data.length - at));
      fsyncSync(fd);
      await sleep(gapMs);
    }
  } finally {
    closeSync(fd);
  }
}

/** Appends a line every `gapMs` for `totalMs`; `keepOpen`: one descriptor throughout, else open/append/close each time. */
async function appendLog(file: string, totalMs: number, gapMs: number, keepOpen: boolean): Promise<string> {
  let text = '';
  const fd = keepOpen ? openSync(file, 'a') : null;
  try {
    for (let i = 0, until = Date.now() + totalMs; Date.now() < until; i++) {
      const line = `line ${i} ${randomBytes(12).toString('hex')}\n`;
      text += line;
      const f = fd ?? openSync(file, 'a');
      writeSync(f, line);
      if (fd === null) closeSync(f);
      await sleep(gapMs);
    }
  } finally {
    if (fd !== null) closeSync(fd);
  }
  return text;
}

const conflictCopies = (root: string) => liveFiles(root).filter((f) => f.includes('(conflicted copy'));

/** Waits until `rel` has `hash` in every root, then until both clients are idle. */
async function arrivesEverywhere(roots: string[], rel: string, hash: string, clients: Client[]): Promise<void> {
  await waitFor(
    () =>
      roots.every((r) => {
        try {
          return sha256(readFileSync(join(r, rel))) === hash;
        } catch {
          return false;
        }
      }),
    60_000,
    () => `${rel} complete everywhere:\n${clients.map((c) => c.daemon?.output().slice(-2000) ?? '').join('\n')}`,
  );
  for (const c of clients) await waitIdle(c, 60_000);
}

describe('files still being written (issue 15, item 1)', { timeout: 150_000 }, () => {
  it('a 2 MB file written over ~3 s arrives whole, with no conflict copy and no half-done version sent', async () => {
    const { a, b, remote } = await twoLiveClients();
    const sentinel = makeSentinel();
    const data = randomBytes(2 * 1024 * 1024);
    await writeSlowly(join(a.local, 'download.bin'), data, 64 * 1024, 90);
    await arrivesEverywhere([a.local, remote, b.local], 'download.bin', sha256(data), [a, b]);
    for (const root of [a.local, remote, b.local]) expect(conflictCopies(root)).toEqual([]);
    // Nothing half-done was sent, so nothing half-done was replaced (into a trash) anywhere.
    for (const root of [a.local, remote, b.local]) expect(trashFiles(root)).toEqual([]);
    expect(sentinelIntact(sentinel)).toBe(true);
    expect(sentinelLeaks(sentinel, remote)).toEqual([]);
  });

  it('a log appended for 4 s (open, append, close each time) produces no conflict copy and ends complete', async () => {
    const { a, b, remote } = await twoLiveClients();
    const text = await appendLog(join(a.local, 'log.txt'), 4000, 150, false);
    await arrivesEverywhere([a.local, remote, b.local], 'log.txt', sha256(text), [a, b]);
    for (const root of [a.local, remote, b.local]) expect(conflictCopies(root)).toEqual([]);
    // Every version the server replaced is a real earlier state of the log: a prefix of it.
    for (const f of trashFiles(remote))
      expect(text.startsWith(readFileSync(join(remote, '.lipsync/trash', f), 'utf8'))).toBe(true);
  });

  it('a log kept open and appended to is sent as whole snapshots while it grows (bounded delay), never as a conflict', async () => {
    const { a, b, remote } = await twoLiveClients({ writeQuietMs: 1000, writeMaxDelayMs: 1500 });
    const file = join(a.local, 'live.log');
    let seenWhileWriting = false;
    const watching = (async () => {
      while (!seenWhileWriting) {
        try {
          if (readFileSync(join(remote, 'live.log'), 'utf8').length > 0) seenWhileWriting = true;
        } catch {
          // not there yet
        }
        await sleep(100);
      }
    })();
    const text = await appendLog(file, 5000, 100, true);
    const whileWriting = seenWhileWriting;
    seenWhileWriting = true;
    await watching;
    expect(whileWriting).toBe(true);
    await arrivesEverywhere([a.local, remote, b.local], 'live.log', sha256(text), [a, b]);
    for (const root of [a.local, remote, b.local]) expect(conflictCopies(root)).toEqual([]);
    for (const f of trashFiles(remote))
      expect(text.startsWith(readFileSync(join(remote, '.lipsync/trash', f), 'utf8'))).toBe(true);
  });

  it('a new folder with a file being written into it sends the file only once complete', async () => {
    const { a, b, remote } = await twoLiveClients();
    mkdirSync(join(a.local, 'incoming'));
    const data = randomBytes(8 * 1024 * 1024);
    await writeSlowly(join(a.local, 'incoming', 'big.bin'), data, 256 * 1024, 60);
    await arrivesEverywhere([a.local, remote, b.local], 'incoming/big.bin', sha256(data), [a, b]);
    for (const root of [a.local, remote, b.local]) expect(conflictCopies(root)).toEqual([]);
    expect(trashFiles(remote)).toEqual([]);
  });

  it('a file written slowly on the server is pulled only once complete, with no conflict copy', async () => {
    const { a, b, remote } = await twoLiveClients();
    const data = randomBytes(2 * 1024 * 1024);
    await writeSlowly(join(remote, 'from-server.bin'), data, 64 * 1024, 90);
    await arrivesEverywhere([a.local, remote, b.local], 'from-server.bin', sha256(data), [a, b]);
    for (const root of [a.local, remote, b.local]) expect(conflictCopies(root)).toEqual([]);
    for (const root of [a.local, b.local]) expect(trashFiles(root)).toEqual([]);
  });

  it('a file appended to after rsync listed it and before rsync read it is no conflict (rsync sends the newer content under the listed mtime)', async () => {
    const remote = makeServerDir();
    const a = await makeClient(server, remote, 'a');
    writeFileSync(join(a.local, 'readme.txt'), 'the pair exists and has synced once');
    await syncOk(a);
    patchConfig(a.e, {}, { bwLimitKBps: 1000 });
    // rsync lists both files first, then sends them in name order: b.log is read about
    // two seconds after it was listed, by which time it has grown. The server then holds
    // the grown content under the listed (older) mtime, and the push reports the listed size.
    writeFileSync(join(a.local, 'a.bin'), randomBytes(2 * 1024 * 1024));
    writeFileSync(join(a.local, 'b.log'), 'line 1\n');
    const first = sync(a);
    await waitFor(
      () => {
        try {
          return readdirSync(join(remote, '.lipsync'), { recursive: true }).some((f) =>
            /(^|\/)\.?a\.bin\./.test(String(f)),
          );
        } catch {
          return false; // the server's .lipsync is made by the first run
        }
      },
      30_000,
      () =>
        `rsync never started writing a.bin on the server: ${JSON.stringify(readdirSync(remote, { recursive: true }))}`,
    );
    appendFileSync(join(a.local, 'b.log'), 'line 2\n');
    // The writer goes on as soon as the grown version has landed (the same sync may look
    // at b.log again: it must then see a local change only, not two sides' edits).
    await waitFor(
      () => {
        try {
          return statSync(join(remote, 'b.log')).size === 14;
        } catch {
          return false;
        }
      },
      30_000,
      () => 'b.log never landed on the server',
    );
    appendFileSync(join(a.local, 'b.log'), 'line 3\n');
    const r = await first;
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // rsync read b.log after it grew: the server has the newer content.
    expect(readFileSync(join(remote, 'b.log'), 'utf8')).toMatch(/^line 1\nline 2\n/);
    await syncOk(a);
    await syncOk(a);
    expect(conflictCopies(a.local)).toEqual([]);
    expect(conflictCopies(remote)).toEqual([]);
    expect(readFileSync(join(remote, 'b.log'), 'utf8')).toBe('line 1\nline 2\nline 3\n');
    expect(readFileSync(join(a.local, 'b.log'), 'utf8')).toBe('line 1\nline 2\nline 3\n');
  });

  it("a push cut short after the file landed (connection lost) is not taken for the server's edit (W5)", async () => {
    const remote = makeServerDir();
    const a = await makeClient(server, remote, 'a');
    // An rsync that does its work, then fails once as a dropped connection does (exit 12).
    const real = execFileSync('sh', ['-c', 'command -v rsync'], { encoding: 'utf8' }).trim();
    const wrapDir = join(a.e.dir, 'wrap');
    const flag = join(a.e.dir, 'drop-next');
    mkdirSync(wrapDir);
    writeFileSync(
      join(wrapDir, 'rsync'),
      // Only a transfer (a path-list run with --backup) is cut; --version and the comparison are not.
      `#!/bin/sh\n"${real}" "$@"; rc=$?\ncase " $* " in *" --backup "*) if [ -e "${flag}" ]; then rm -f "${flag}"; exit 12; fi ;; esac\nexit $rc\n`,
      { mode: 0o755 },
    );
    a.e.env.PATH = `${wrapDir}:${a.e.env.PATH ?? ''}`;
    // The cut is rsync's: the small file goes by rsync, not through the session (W6).
    a.e.env.LIPSYNC_SMALL_FILES = '0';
    writeFileSync(join(a.local, 'report.txt'), 'first part of the report');
    writeFileSync(flag, '');
    const cut = await sync(a);
    expect(cut.code).not.toBe(0);
    expect(existsSync(flag)).toBe(false);
    // The server got the file; this client never recorded it. The writer goes on.
    expect(readFileSync(join(remote, 'report.txt'), 'utf8')).toBe('first part of the report');
    await sleep(1100);
    writeFileSync(join(a.local, 'report.txt'), 'first part of the report, and the rest of it');
    await syncOk(a);
    expect(conflictCopies(a.local)).toEqual([]);
    expect(conflictCopies(remote)).toEqual([]);
    expect(readFileSync(join(remote, 'report.txt'), 'utf8')).toBe('first part of the report, and the rest of it');
    // The server's first version went to its trash as a replaced version: nothing lost.
    expect(trashFiles(remote).filter((f) => f.endsWith('report.txt'))).toHaveLength(1);
  });
});
