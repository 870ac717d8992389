/**
 * Restart after a crash (docs/sync-semantics.md, "Restart after a crash"): a running
 * pair writes a checkpoint when it is quiet after a sync; after a kill -9 the next start
 * looks only at what changed since the checkpoint, and never misses a change made on
 * either side before the kill (synced or not) or while nothing ran. Without a
 * checkpoint (LIPSYNC_CHECKPOINT_MS=0) it compares everything, as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { readLogRecords, requireBuild, treeSnapshot, waitFor } from '../support/cli.js';
import {
  kill9,
  makeClient,
  makeServerDir,
  sleep,
  start,
  stop,
  treeDiff,
  waitIdle,
  waitStreaming,
  type Client,
} from '../support/twoway.js';
import { put } from '../support/trees.js';
import { withEnv } from '../support/env.js';
import { mulberry32 } from '../support/prng.js';

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

const CHECKPOINT_MSG = /started after an end that was not clean .*: looked at what changed since the last checkpoint/;
const CLEAN_MSG = /started after a clean stop/;

/** The start messages (clean stop or checkpoint) logged after `t`. */
function startMessages(c: Client, t: number): string[] {
  return readLogRecords(c.e)
    .filter((r) => r.t >= t && (CHECKPOINT_MSG.test(String(r.msg)) || CLEAN_MSG.test(String(r.msg))))
    .map((r) => String(r.msg));
}

/** The pair's checkpoint record as the daemon wrote it (read-only, beside the running daemon). */
function checkpoint(c: Client): { localSinceMs: number; remote: boolean } | null {
  const file = join(c.e.dataDir, 'state', `${c.pair}.db`);
  if (!existsSync(file)) return null;
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'checkpoint'").get() as { value: string } | undefined;
    return row?.value ? (JSON.parse(row.value) as { localSinceMs: number; remote: boolean }) : null;
  } finally {
    db.close();
  }
}

/** Waits for a checkpoint of this run (a start clears the record it started from). */
async function waitCheckpoint(c: Client, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    async () => checkpoint(c) !== null,
    timeoutMs,
    () => `a checkpoint of ${c.name}; last ${JSON.stringify(checkpoint(c))}\n${c.daemon?.output() ?? ''}`,
  );
}

/**
 * What both sides must end up holding. Each side changes only paths under its own
 * folder (`here/`, `srv/`), so no change can meet another: the expected tree is every
 * change applied in order, and a missed change shows as a difference.
 */
class Model {
  readonly files = new Map<string, string>();
  /** Every content any path ever had: what a conflict copy may hold. */
  readonly versions = new Set<string>();
  private n = 0;
  constructor(
    private readonly random: () => number,
    private readonly roots: { here: string; srv: string },
  ) {}

  /** One random change on `side`: create, edit (another size), delete or rename a file. */
  async change(side: 'here' | 'srv', tag: string): Promise<string> {
    const root = this.roots[side];
    const mine = [...this.files.keys()].filter((p) => p.startsWith(`${side}/`));
    const r = this.random();
    const pick = () => mine[Math.floor(this.random() * mine.length)]!;
    if (mine.length < 3 || r < 0.35) {
      const dir = this.random() < 0.5 ? `${side}/d${Math.floor(this.random() * 3)}` : side;
      const path = `${dir}/f${this.n++}.txt`;
      const content = `${tag} new ${path}\n`;
      await put(root, path, content);
      this.files.set(path, content);
      this.versions.add(content);
      return `create ${path}`;
    }
    if (r < 0.7) {
      const path = pick();
      const content = `${this.files.get(path)}${tag} edit\n`;
      await put(root, path, content);
      this.files.set(path, content);
      this.versions.add(content);
      return `edit ${path}`;
    }
    if (r < 0.85) {
      const path = pick();
      rmSync(join(root, path));
      this.files.delete(path);
      return `delete ${path}`;
    }
    const from = pick();
    const to = `${side}/r${this.n++}.txt`;
    renameSync(join(root, from), join(root, to));
    this.files.set(to, this.files.get(from)!);
    this.files.delete(from);
    return `rename ${from} → ${to}`;
  }

  expected(): Map<string, string> {
    return new Map(this.files);
  }
}

/** A tree's files as path → content (folders left out: the model has files only). */
function filesOf(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const [p, v] of treeSnapshot(root)) {
    const m = /^file:[-x]:(.*)$/s.exec(v);
    if (m) out.set(p, Buffer.from(m[1]!, 'base64').toString('utf8'));
    else if (v !== 'dir') out.set(p, v);
  }
  return out;
}

describe('restart after a crash, from the last checkpoint', () => {
  withEnv('LIPSYNC_CHECKPOINT_MS', '500');
  const seed = Number(process.env.LIPSYNC_SEED ?? 7);

  it(`a kill -9 at random points after a checkpoint never misses a change made before or after it, on either side (seed=${seed})`, async () => {
    const random = mulberry32(seed);
    const remote = makeServerDir();
    const c = await makeClient(server, remote, 'k');
    running.push(c);
    const model = new Model(random, { here: c.local, srv: remote });
    for (let i = 0; i < 6; i++) {
      await model.change('here', 'first');
      await model.change('srv', 'first');
    }
    await start(c);
    await waitIdle(c, 60_000);
    await waitStreaming(c);
    const journal: string[] = [];
    const rounds = 4;
    let copies = 0;
    for (let round = 0; round < rounds; round++) {
      await waitIdle(c, 60_000);
      await waitCheckpoint(c);
      // Changes while the daemon runs (some synced, some in flight), then a kill at a random moment.
      const before = 1 + Math.floor(random() * 5);
      for (let i = 0; i < before; i++) {
        const side = random() < 0.5 ? 'here' : 'srv';
        journal.push(`round ${round} before the kill, ${side}: ${await model.change(side, `r${round}b${i}`)}`);
        if (random() < 0.5) await sleep(Math.floor(random() * 400));
      }
      const killAfter = Math.floor(random() * 1500);
      journal.push(`round ${round}: kill -9 after ${killAfter} ms`);
      await sleep(killAfter);
      await kill9(c);
      // Changes while nothing runs, on both sides.
      const after = Math.floor(random() * 4);
      for (let i = 0; i < after; i++) {
        const side = random() < 0.5 ? 'here' : 'srv';
        journal.push(`round ${round} while dead, ${side}: ${await model.change(side, `r${round}a${i}`)}`);
      }
      const t = Date.now();
      await start(c);
      await waitIdle(c, 60_000);
      await waitStreaming(c);
      // The server feed's late reports of the restart's own sync may start one more short cycle.
      await sleep(500);
      await waitIdle(c, 60_000);
      const msgs = startMessages(c, t);
      expect(msgs, journal.join('\n')).toHaveLength(1);
      expect(msgs[0], journal.join('\n')).toMatch(CHECKPOINT_MSG);
      // Every change is there, on both sides. A cycle killed between a pull and its record
      // leaves a file the base does not know: if the other side changed it meanwhile, the
      // restart keeps both (a conflict copy of a former version), never one over the other.
      const here = filesOf(c.local);
      const there = filesOf(remote);
      const why = journal.join('\n');
      expect(treeDiff('here', here, 'server', there), why).toBe('');
      const want = model.expected();
      const extra = new Map<string, string>();
      for (const [p, content] of here) {
        if (want.has(p)) continue;
        extra.set(p, content);
        want.set(p, content);
      }
      expect(treeDiff('expected', want, 'here', here), why).toBe('');
      for (const [p, content] of extra) {
        expect(p, why).toMatch(/ \(conflicted copy laptop-k [^)]*\)\.txt$/);
        expect(model.versions.has(content), `${p} holds ${JSON.stringify(content)}\n${why}`).toBe(true);
      }
      copies += extra.size;
    }
    expect(copies).toBeLessThanOrEqual(rounds);
    await stop(c);
  }, 400_000);
});

describe('restart after a crash with no checkpoint', () => {
  withEnv('LIPSYNC_CHECKPOINT_MS', '0');

  it('compares everything, and finds what changed on both sides', async () => {
    const remote = makeServerDir();
    await put(remote, 'old/a.txt', 'a\n');
    const c = await makeClient(server, remote, 'n');
    running.push(c);
    await start(c);
    await waitIdle(c, 60_000);
    await sleep(1000);
    expect(checkpoint(c)).toBeNull();
    await kill9(c);
    await put(c.local, 'here.txt', 'written here while dead\n');
    await put(remote, 'old/a.txt', 'edited on the server while dead\n');
    const t = Date.now();
    await start(c);
    await waitIdle(c, 60_000);
    expect(startMessages(c, t)).toEqual([]);
    expect(filesOf(remote).get('here.txt')).toBe('written here while dead\n');
    expect(filesOf(c.local).get('old/a.txt')).toBe('edited on the server while dead\n');
    await stop(c);
  }, 200_000);
});
