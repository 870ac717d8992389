/**
 * Randomized convergence test for two-way sync: two clients A and B and the
 * server folder S (changed directly, as someone on the server would) get a
 * seeded random mix of file operations, one-shot syncs, running daemons,
 * kill -9 of daemons and of one-shot syncs, and dropped ssh connections.
 * After a settle phase, A, B and S must be identical, and no version of a
 * file that ever existed whole somewhere may be gone from everywhere (it must
 * be at some path, conflict copies included, or in a `.lipsync/trash`).
 *
 * Re-run a failing case with the seed printed in the failure message:
 *   npx tsc -b && LIPSYNC_SEED=<seed> npx vitest run test/integration/convergence.test.ts
 * Long soak (the op count is the second knob):
 *   LIPSYNC_OPS=5000 LIPSYNC_SEED=<seed> npx vitest run test/integration/convergence.test.ts
 * The seed fixes the sequence of intended operations; what each one finds
 * depends on the daemons' timing, so a replay is close but not always exact.
 * The full operation log is written to test-results/convergence-<seed>.log.
 *
 * Issue 15 mixes more op kinds into the same stream (a share of the ops,
 * `LIPSYNC_SOAK_RATE`, 0.12 by default), switchable by `LIPSYNC_SOAK_KINDS`
 * (default `all`; kinds and groups, applied left to right, `-` removes:
 * `none`, `slow`, `hostile`, `all,-link-to-dir`, `pieces,log-open`; see
 * test/support/soak.ts). A disabled kind's ops become the ordinary op the
 * same draws give, so the rest of the stream stays as it was.
 * - Slow writers, on A, B or the server ("another client"), running while
 *   the op stream goes on: `pieces` writes a file in 64 KB pieces over
 *   0.5–3 s like a download (sometimes a new download over its own earlier
 *   one); `log-open` and `log-reopen` append a line every 100–200 ms for
 *   1–4 s with O_APPEND, keeping one descriptor open or opening and closing
 *   it for each line (sometimes continuing an earlier log). Their files live
 *   in `slow/` and `logs/`, which no other op touches: one writer each, so
 *   there must be no conflict copy of them and every side must end with
 *   their complete content.
 * - A hostile client on the server: `dir-to-link` replaces a folder by a
 *   symlink to a sentinel folder outside every root (absolute, relative, or
 *   relative and dangling); `link-to-dir` replaces such a link by a real folder
 *   holding files named like the sentinel's (`id_decoy`, …); `file-to-link`
 *   replaces a file by a symlink to a sentinel file; `link-to-file` replaces
 *   a link by a file. The sentinel must be intact at the end, none of its
 *   content may be in any root (trash included), nothing may appear where a
 *   dangling link points, and the usual checks hold (what the hostile client
 *   replaced counts as destroyed by the test, not lost).
 * The test's own operations never go through a symlink (test/support/soak.ts
 * linkOnPath): whatever reaches the sentinel went there through the engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  constants as fsConstants,
  appendFileSync,
  closeSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readlinkSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { startSshd, type SshServer } from '../harness/sshd.js';
import { BIN, ROOT, cli, listFiles, requireBuild, treeSnapshot } from '../support/cli.js';
import {
  dropConnections,
  kill9,
  liveFiles,
  makeClient,
  makeServerDir,
  settle,
  sha256,
  sleep,
  start,
  stop,
  sync,
  trashDir,
  treeDiff,
  conflicts,
  type Client,
} from '../support/twoway.js';
import { makeSentinel, sentinelIntact, sentinelLeaks } from '../support/sentinel.js';
import {
  appendLines,
  entriesOf,
  entryChanges,
  linkOnPath,
  parseSoakKinds,
  present,
  writeInPieces,
  type SoakKind,
} from '../support/soak.js';
import { mulberry32 } from '../support/prng.js';

const seed = process.env.LIPSYNC_SEED ? Number(process.env.LIPSYNC_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const OPS = process.env.LIPSYNC_OPS ? Number(process.env.LIPSYNC_OPS) : 300;
const SOAK = parseSoakKinds(process.env.LIPSYNC_SOAK_KINDS);
const SOAK_RATE = process.env.LIPSYNC_SOAK_RATE ? Number(process.env.LIPSYNC_SOAK_RATE) : 0.12;
const SOAK_ENV =
  (process.env.LIPSYNC_SOAK_KINDS ? `LIPSYNC_SOAK_KINDS=${process.env.LIPSYNC_SOAK_KINDS} ` : '') +
  (process.env.LIPSYNC_SOAK_RATE ? `LIPSYNC_SOAK_RATE=${process.env.LIPSYNC_SOAK_RATE} ` : '');
const RERUN = `${SOAK_ENV}LIPSYNC_SEED=${seed} LIPSYNC_OPS=${OPS} npx vitest run test/integration/convergence.test.ts`;

type Site = 'A' | 'B' | 'S';

/** Four directory slots and four file names: 20 file paths, so collisions and conflicts really happen. */
const DIRS = ['d1', 'd2', 'd3', 'd1/d4'];
const PARENTS = ['', ...DIRS];
const NAMES = ['a.txt', 'b.txt', 'c.bin', 'notes'];
const FILE_PATHS = PARENTS.flatMap((p) => NAMES.map((n) => (p ? `${p}/${n}` : n)));
/** The slow writers' folders: no other op touches them, so each of their files has exactly one writer. */
const SLOW_DIRS = ['slow', 'logs'];
const isSlowPath = (rel: string) => SLOW_DIRS.some((d) => rel === d || rel.startsWith(d + '/'));

/** Soak kinds by the op's second draw (given that its first says "a soak op"). */
const SOAK_WEIGHTS: [SoakKind, number][] = [
  ['pieces', 0.28],
  ['log-open', 0.14],
  ['log-reopen', 0.14],
  ['dir-to-link', 0.16],
  ['link-to-dir', 0.12],
  ['file-to-link', 0.1],
  ['link-to-file', 0.06],
];
const soakKindOf = (x: number): SoakKind => {
  let acc = 0;
  for (const [k, w] of SOAK_WEIGHTS) if (x < (acc += w)) return k;
  return SOAK_WEIGHTS[SOAK_WEIGHTS.length - 1]![0];
};
/** open(2) flags of the test's writes: never through a symlink at the path itself. */
const NOFOLLOW_WRITE = fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW;
/** Slow writers running at once; one more waits for one of them to end. */
const MAX_WRITERS = 4;

/** A file of the slow writers: its one writer's site and what it wrote in full. */
interface SlowFile {
  rel: string;
  site: Site;
  kind: 'pieces' | 'log';
  /** The complete content after its last writer ended (undefined while the first one runs, or after a failed one). */
  expected?: Buffer;
  /** What its writers were: for failure messages. */
  history: string[];
  /** When its writers ran (Date.now()), to name the kills and drops that happened meanwhile. */
  spans: { from: number; to?: number }[];
  active: boolean;
  failed?: string;
}

interface Version {
  hash: string;
  size: number;
  /** Where and when it was first written (for failure messages). */
  origin: string;
  /**
   * Sites known to hold it (live or in their trash) and where no test
   * operation destroyed it since. The engine must never destroy a version
   * without keeping it in a trash, so a version with a holder must survive.
   */
  holders: Set<Site>;
}

let server: SshServer;
const allClients: Client[] = [];
beforeAll(async () => {
  requireBuild();
  server = await startSshd();
});
afterAll(async () => {
  // After a failure midway: no daemon outlives the test.
  for (const c of allClients) await kill9(c);
  await server?.stop();
});

describe(`randomized convergence (seed=${seed}, ops=${OPS})`, () => {
  it(
    `A, B and the server converge and no version is lost (seed=${seed})`,
    async () => {
      const rng = mulberry32(seed);
      const remote = makeServerDir();
      const a = await makeClient(server, remote, 'a');
      const b = await makeClient(server, remote, 'b');
      allClients.push(a, b);
      const clients: Record<'A' | 'B', Client> = { A: a, B: b };
      const root = (s: Site) => (s === 'S' ? remote : clients[s].local);
      const opLog: string[] = [];
      const problems: string[] = [];
      const versions = new Map<string, Version>();
      const logFile = join(ROOT, 'test-results', `convergence-${seed}.log`);
      mkdirSync(dirname(logFile), { recursive: true });
      // A folder outside every root that the hostile client points links at; and a name outside
      // every root (next to each) that dangling relative links point at: nothing may appear there.
      const sentinel = makeSentinel();
      const sentinelBefore = entriesOf(sentinel.dir);
      const OUTSIDE = `lipsync-outside-${seed}-${process.pid}`;
      writeFileSync(
        logFile,
        `seed=${seed} ops=${OPS} soak=${[...SOAK].join(',') || 'none'} rate=${SOAK_RATE}\n` +
          `A=${a.local}\nB=${b.local}\nS=${remote}\nsentinel=${sentinel.dir} marker=${sentinel.marker}\n`,
      );
      /** Each line goes to the log file at once, so that even a run killed by a timeout leaves it. */
      const note = (line: string) => {
        opLog.push(line);
        appendFileSync(logFile, line + '\n');
      };
      const daemonOutputs: string[] = [];

      const context = () =>
        [
          `seed=${seed}  re-run: ${RERUN}`,
          `full op log: ${logFile}`,
          'last operations:',
          ...opLog.slice(-40),
          ...daemonOutputs.slice(-2).map((o) => `daemon output (tail):\n${o.slice(-3000)}`),
        ].join('\n');

      // ---- hashing with a cache keyed by file identity and change time ----
      const hashCache = new Map<string, { key: string; hash: string }>();
      const hashFile = (abs: string): string | undefined => {
        try {
          const st = lstatSync(abs, { bigint: true });
          if (!st.isFile()) return undefined;
          const key = `${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
          const c = hashCache.get(abs);
          if (c && c.key === key) return c.hash;
          const hash = sha256(readFileSync(abs));
          hashCache.set(abs, { key, hash });
          return hash;
        } catch {
          return undefined;
        }
      };
      const safeLive = (r: string) => {
        try {
          return liveFiles(r);
        } catch {
          return [];
        }
      };
      const safeList = (d: string) => {
        try {
          return listFiles(d);
        } catch {
          return [];
        }
      };
      /** Hashes of everything a site holds: its live tree and its trash. */
      const siteHashes = (s: Site): Set<string> => {
        const out = new Set<string>();
        for (const f of safeLive(root(s))) {
          const h = hashFile(join(root(s), f));
          if (h) out.add(h);
        }
        for (const f of safeList(trashDir(root(s)))) {
          const h = hashFile(join(trashDir(root(s)), f));
          if (h) out.add(h);
        }
        return out;
      };
      /** Record which known versions each site's live tree holds right now. */
      const observe = (sites: Site[]) => {
        for (const s of sites)
          for (const f of safeLive(root(s))) {
            const h = hashFile(join(root(s), f));
            const v = h ? versions.get(h) : undefined;
            if (v) v.holders.add(s);
          }
      };
      /** Hashes of the files at or below `rel` on a site, before a test operation destroys them. */
      const hashesUnder = (s: Site, rel: string): string[] => {
        const abs = join(root(s), rel);
        let st;
        try {
          st = lstatSync(abs);
        } catch {
          return [];
        }
        if (st.isFile()) return [hashFile(abs)].filter((h): h is string => !!h);
        if (!st.isDirectory()) return [];
        return safeList(abs)
          .map((f) => hashFile(join(abs, f)))
          .filter((h): h is string => !!h);
      };
      /** After a test operation removed or overwrote these versions on `s`: does `s` still hold them? */
      const afterDestroy = (s: Site, destroyed: string[]) => {
        const relevant = destroyed.filter((h) => versions.get(h)?.holders.has(s));
        if (!relevant.length) return;
        const held = siteHashes(s);
        for (const h of relevant) if (!held.has(h)) versions.get(h)!.holders.delete(s);
      };

      // ---- content: deterministic from the PRNG, varied sizes 0 B – 200 KB ----
      const makeContent = (header: string, size: number, contentSeed: number): Buffer => {
        const buf = Buffer.alloc(size);
        const head = Buffer.from(header);
        head.copy(buf, 0, 0, Math.min(size, head.length));
        const r = mulberry32(contentSeed);
        for (let i = head.length; i < size; i++) buf[i] = (r() * 256) | 0;
        return buf;
      };
      const pickSize = (x: number, y: number): number => {
        if (x < 0.1) return 0;
        if (x < 0.55) return 1 + Math.floor(y * 4096);
        if (x < 0.85) return 4096 + Math.floor(y * 60_000);
        return 64_000 + Math.floor(y * 136_000);
      };

      // ---- operations ----
      const siteOf = (x: number): Site => (x < 0.4 ? 'A' : x < 0.8 ? 'B' : 'S');
      const clientOf = (x: number): 'A' | 'B' => (x < 0.5 ? 'A' : 'B');
      const pick = <T>(arr: readonly T[], x: number): T => arr[Math.floor(x * arr.length) % arr.length]!;
      /** Anything at the path, a dangling link included (never follows the last component). */
      const exists = (s: Site, rel: string) => present(join(root(s), rel));
      /**
       * A daemon may turn a folder into a symlink between an op's check and its write: a write
       * that finds a link on its path afterwards is listed, so that a changed sentinel is never
       * blamed on the engine when the test itself may have gone through that link.
       */
      const raced: string[] = [];
      const racedIntoLink = (s: Site, rel: string, opNo: number) => {
        const l = linkOnPath(root(s), rel);
        if (l) raced.push(`op${opNo} ${s}:${rel} (${l} is a symlink after the write)`);
      };
      /** Why an op of the test must not touch `rel` on `s`: a symlink on its path. */
      const linked = (s: Site, ...rels: string[]): string | undefined => {
        for (const rel of rels) {
          const l = linkOnPath(root(s), rel);
          if (l) return `skip (${l} is a symlink)`;
        }
        return undefined;
      };
      const isLink = (s: Site, rel: string) => {
        try {
          return lstatSync(join(root(s), rel)).isSymbolicLink();
        } catch {
          return false;
        }
      };
      const isFile = (s: Site, rel: string) => {
        try {
          return lstatSync(join(root(s), rel)).isFile();
        } catch {
          return false;
        }
      };
      const isDir = (s: Site, rel: string) => {
        try {
          return lstatSync(join(root(s), rel)).isDirectory();
        } catch {
          return false;
        }
      };

      const write = (s: Site, rel: string, size: number, contentSeed: number, opNo: number): string => {
        const abs = join(root(s), rel);
        const why = linked(s, rel);
        if (why) return why;
        try {
          mkdirSync(dirname(abs), { recursive: true });
        } catch (e) {
          return `skip (mkdir parent: ${(e as NodeJS.ErrnoException).code})`;
        }
        if (exists(s, rel) && !isFile(s, rel)) return 'skip (not a file)';
        const before = hashesUnder(s, rel);
        const content = makeContent(`op${opNo} ${s} ${rel}\n`, size, contentSeed);
        try {
          const fd = openSync(abs, NOFOLLOW_WRITE, 0o666);
          try {
            writeFileSync(fd, content);
          } finally {
            closeSync(fd);
          }
        } catch (e) {
          return `skip (${(e as NodeJS.ErrnoException).code})`;
        } finally {
          racedIntoLink(s, rel, opNo);
        }
        const hash = sha256(content);
        const v = versions.get(hash) ?? { hash, size, origin: `op${opNo} ${s}:${rel}`, holders: new Set<Site>() };
        v.holders.add(s);
        versions.set(hash, v);
        afterDestroy(s, before);
        return `wrote ${size} B ${hash.slice(0, 10)}`;
      };

      const anyLiveFile = (s: Site, x: number): string | undefined => {
        const files = safeLive(root(s))
          .filter((f) => !isSlowPath(f))
          .sort();
        return files.length ? pick(files, x) : undefined;
      };

      const daemonRunning = (k: 'A' | 'B') => clients[k].daemon !== null;

      /** A one-shot `lipsync sync` process, SIGKILLed after `afterMs`. */
      const killedSync = (c: Client, afterMs: number): Promise<number | null> =>
        new Promise((resolve) => {
          const child = spawn(process.execPath, [BIN, 'sync', c.pair], { env: c.e.env, stdio: 'ignore' });
          const t = setTimeout(() => child.kill('SIGKILL'), afterMs);
          child.on('close', (code) => {
            clearTimeout(t);
            resolve(code);
          });
        });

      const stopDaemon = async (k: 'A' | 'B') => {
        const d = clients[k].daemon;
        const code = await stop(clients[k]);
        if (d) daemonOutputs.push(`${k}: ${d.output()}`);
        if (code === 'hung') problems.push(`daemon ${k} did not exit on SIGINT: ${clients[k].hangReport}`);
        else if (code !== 0) problems.push(`daemon ${k} exited ${code} on SIGINT`);
        return code;
      };

      // A sync that would delete more than half of the files pauses and asks (rule S2); the
      // user here always answers `lipsync confirm`, when a daemon's output or a sync's output asks.
      const seenOutput = new WeakMap<object, number>();
      const confirmIfAsked = async (k: 'A' | 'B', syncOutput = '') => {
        let asked = /lipsync confirm/.test(syncOutput);
        const d = clients[k].daemon;
        if (d) {
          const out = d.output();
          if (out.slice(seenOutput.get(d) ?? 0).includes('lipsync confirm')) asked = true;
          seenOutput.set(d, out.length);
        }
        if (!asked) return;
        const r = await cli(clients[k].e, ['confirm', clients[k].pair]);
        note(
          `   ${k} lipsync confirm ${clients[k].pair} → exit ${r.code} ${(r.stdout + r.stderr).trim().slice(0, 200)}`,
        );
      };

      /** A one-shot `lipsync sync`; one that hangs is killed after 120 s and counted as a problem. */
      const oneShot = async (k: 'A' | 'B', opNo: number): Promise<{ code: number | null; text: string }> => {
        const started = Date.now();
        await confirmIfAsked(k);
        try {
          const res = await sync(clients[k], 120_000);
          await confirmIfAsked(k, res.stdout + res.stderr);
          const out = res.code ? ': ' + (res.stdout + res.stderr).trim().replace(/\s+/g, ' ').slice(0, 300) : '';
          return { code: res.code, text: `exit ${res.code} in ${Date.now() - started} ms${out}` };
        } catch {
          const d = clients[k].daemon;
          problems.push(
            `op${opNo}: ${k}: lipsync sync ${d ? '(through the running daemon) ' : ''}hung for more than 120 s` +
              (d ? `; daemon output (tail):\n${d.output().slice(-2000)}` : ''),
          );
          return { code: null, text: 'HUNG: killed after 120 s' };
        }
      };

      // kill -9 in the middle of a sync can leave the server's lock to expire (a minute):
      // a bounded number of them keeps the default run short.
      const MAX_KILLS = Math.max(2, Math.round(OPS / 100));
      let kills = 0;

      // ---- issue 15: slow writers and a hostile client on the server ----
      const SITES: Site[] = ['A', 'B', 'S'];
      const PIECE = 64 * 1024;
      const slowFiles = new Map<string, SlowFile>();
      const writers = new Set<Promise<void>>();
      const soakDone = { slow: 0, slowFailed: 0, hostile: 0 };
      /** kill -9 and dropped connections (Date.now() at the op's end): they can cut a sync between its transfer and its record. */
      const interruptions: { at: number; what: string }[] = [];
      const whileWritten = (f: SlowFile): string => {
        const hits = interruptions.filter((x) => f.spans.some((sp) => x.at >= sp.from && x.at <= (sp.to ?? Infinity)));
        return hits.length
          ? `; while it was written: ${hits.map((x) => x.what).join(', ')}`
          : '; no kill -9 or dropped connection while it was written';
      };
      let sentinelChangedAt: string | undefined;
      let firstLeak: string | undefined;
      const recordVersion = (s: Site, content: Buffer, origin: string) => {
        const hash = sha256(content);
        const v = versions.get(hash) ?? { hash, size: content.length, origin, holders: new Set<Site>() };
        v.holders.add(s);
        versions.set(hash, v);
      };
      /**
       * Runs `work` (the writer) in the background once fewer than MAX_WRITERS run: the op
       * stream goes on meanwhile. A writer's error is a problem of the run (its folder belongs
       * to it alone, so nothing but the engine can have been in its way).
       */
      const launch = async (f: SlowFile, what: string, work: () => Promise<void>): Promise<string> => {
        let waited = '';
        if (writers.size >= MAX_WRITERS) {
          const w0 = Date.now();
          await Promise.race(writers);
          waited = ` after waiting ${Date.now() - w0} ms for one of ${MAX_WRITERS} writers to end`;
        }
        f.active = true;
        f.history.push(what);
        const started = Date.now();
        const span: { from: number; to?: number } = { from: started };
        f.spans.push(span);
        const p: Promise<void> = work()
          .then(
            () => {
              soakDone.slow++;
              note(`   writer ${f.site}:${f.rel} (${what}) ended after ${Date.now() - started} ms`);
            },
            (e: unknown) => {
              soakDone.slowFailed++;
              const err = e as NodeJS.ErrnoException;
              f.failed = `${what}: ${err.code ?? ''} ${err.message}`;
              problems.push(
                `slow writer ${f.site}:${f.rel} (${what}) failed after ${Date.now() - started} ms: ${err.message}`,
              );
              note(`   writer ${f.site}:${f.rel} (${what}) FAILED after ${Date.now() - started} ms: ${err.message}`);
            },
          )
          .finally(() => {
            span.to = Date.now();
            f.active = false;
            writers.delete(p);
          });
        writers.add(p);
        return `started${waited}`;
      };
      /** How a side's copy of a slow-written file differs from its complete content. */
      const describeGot = (got: Buffer | undefined | 'not a file', want: Buffer): string => {
        if (got === undefined || got === 'not a file') return got ?? 'absent';
        const prefix = got.length < want.length && want.subarray(0, got.length).equals(got);
        return `${got.length} B ${sha256(got).slice(0, 12)}${prefix ? ' (a prefix of it: incomplete)' : ''}`;
      };
      const readSide = (s: Site, rel: string): Buffer | undefined | 'not a file' => {
        try {
          return lstatSync(join(root(s), rel)).isFile() ? readFileSync(join(root(s), rel)) : 'not a file';
        } catch {
          return undefined;
        }
      };
      /**
       * A writer closed its file: `expected` is what it wrote in full (for a log, on top of what
       * its earlier writers wrote). What its own side holds right now existed whole: a version.
       * If that is not `expected`, the engine changed the file under its one writer (a pull or a
       * conflict rename while it was written).
       */
      const ownSideBad: string[] = [];
      const writerEnded = (f: SlowFile, expected: Buffer, opName: string, before: string[]) => {
        f.expected = expected;
        const got = readSide(f.site, f.rel);
        if (got instanceof Buffer) recordVersion(f.site, got, `${opName} ${f.site}:${f.rel} (slow writer)`);
        if (!(got instanceof Buffer && got.equals(expected))) {
          const line =
            `${f.rel} on ${f.site} right after its writer (${opName}) closed it: ${describeGot(got, expected)}; ` +
            `expected ${expected.length} B ${sha256(expected).slice(0, 12)} (${f.history.join('; ')})`;
          ownSideBad.push(line);
          note(`   WRITER'S FILE CHANGED UNDER IT: ${line}`);
        }
        afterDestroy(f.site, before);
      };
      const slowFileFor = (rel: string, s: Site, kind: SlowFile['kind']): SlowFile => {
        const f = slowFiles.get(rel) ?? { rel, site: s, kind, history: [], spans: [], active: false };
        slowFiles.set(rel, f);
        return f;
      };
      /** Earlier files of this site's writers of this kind that no writer is writing now. */
      const ownSlow = (s: Site, kind: SlowFile['kind']) =>
        [...slowFiles.values()]
          .filter((f) => f.site === s && f.kind === kind && !f.active && !f.failed && f.expected)
          .sort((x, y) => (x.rel < y.rel ? -1 : 1));

      /** A relative link text that reaches `absTarget` from any folder of this machine (`..` stops at /). */
      const deepRel = (absTarget: string) => '../'.repeat(24) + absTarget.slice(1);
      const folderLinkTarget = (linkAbs: string, x: number): string =>
        x < 0.25
          ? sentinel.dir
          : x < 0.4
            ? join(sentinel.dir, 'sub')
            : x < 0.6
              ? relative(dirname(linkAbs), sentinel.dir)
              : x < 0.8
                ? deepRel(sentinel.dir)
                : relative(dirname(linkAbs), join(dirname(remote), OUTSIDE));
      const fileLinkTarget = (linkAbs: string, x: number): string =>
        x < 0.3
          ? join(sentinel.dir, 'victim')
          : x < 0.5
            ? join(sentinel.dir, 'id_decoy')
            : x < 0.7
              ? deepRel(join(sentinel.dir, 'notes.txt'))
              : x < 0.85
                ? join(sentinel.dir, 'link-to-notes')
                : relative(dirname(linkAbs), join(sentinel.dir, 'sub', 'deep.txt'));
      const readLink = (abs: string) => {
        try {
          return readlinkSync(abs);
        } catch {
          return '?';
        }
      };

      const soakOp = async (k: SoakKind, r: number[], i: number): Promise<{ desc: string; result: string }> => {
        const s = siteOf(r[1]!);
        const errCode = (e: unknown) => `skip (${(e as NodeJS.ErrnoException).code})`;
        if (k === 'pieces') {
          const own = ownSlow(s, 'pieces');
          const again = own.length > 0 && r[2]! < 0.3;
          const rel = again ? pick(own, r[2]! / 0.3).rel : `slow/${s}-op${i}.bin`;
          const pieces = 2 + Math.floor(r[4]! * 19);
          const pause = Math.floor((500 + r[3]! * 2500) / (pieces - 1));
          const size = (pieces - 1) * PIECE + 1 + Math.floor(r[6]! * (PIECE - 1));
          const what = `op${i}: ${size} B in ${pieces} pieces ${pause} ms apart${again ? ', a new download over the earlier one' : ''}`;
          const desc = `${s} slow write ${rel} (${what})`;
          const why = linked(s, rel);
          if (why) return { desc, result: why };
          try {
            mkdirSync(dirname(join(root(s), rel)), { recursive: true });
          } catch (e) {
            return { desc, result: errCode(e) };
          }
          const content = makeContent(`op${i} ${s} ${rel} in ${pieces} pieces\n`, size, Math.floor(r[5]! * 2 ** 32));
          const f = slowFileFor(rel, s, 'pieces');
          const before = hashesUnder(s, rel);
          const result = await launch(f, what, async () => {
            await writeInPieces(join(root(s), rel), content, PIECE, pause);
            writerEnded(f, content, `op${i}`, before);
          });
          return { desc, result };
        }
        if (k === 'log-open' || k === 'log-reopen') {
          const style = k === 'log-open' ? 'open' : 'reopen';
          const own = ownSlow(s, 'log');
          const again = own.length > 0 && r[2]! < 0.4;
          const rel = again ? pick(own, r[2]! / 0.4).rel : `logs/${s}-op${i}.log`;
          const every = 100 + Math.floor(r[4]! * 100);
          const n = Math.floor((1000 + r[3]! * 3000) / every) + 1;
          const lr = mulberry32(Math.floor(r[5]! * 2 ** 32));
          const lines = Array.from(
            { length: n },
            (_, j) => `op${i} ${s} line ${j + 1}/${n} ${'0123456789abcdef'.repeat(1 + Math.floor(lr() * 8))}\n`,
          );
          const what =
            `op${i}: ${n} lines ${every} ms apart, ` +
            (style === 'open' ? 'one descriptor kept open' : 'open/append/close each line') +
            (again ? ', continuing it' : '');
          const desc = `${s} append to ${rel} (${what})`;
          const why = linked(s, rel);
          if (why) return { desc, result: why };
          try {
            mkdirSync(dirname(join(root(s), rel)), { recursive: true });
          } catch (e) {
            return { desc, result: errCode(e) };
          }
          const f = slowFileFor(rel, s, 'log');
          const prior = f.expected ?? Buffer.alloc(0);
          const before = hashesUnder(s, rel);
          const result = await launch(f, what, async () => {
            await appendLines(join(root(s), rel), lines, every, style);
            writerEnded(f, Buffer.concat([prior, Buffer.from(lines.join(''))]), `op${i}`, before);
          });
          return { desc, result };
        }
        // The hostile client: the server's folder, changed directly.
        if (k === 'dir-to-link') {
          const rel = pick(DIRS, r[2]!);
          const abs = join(remote, rel);
          const target = folderLinkTarget(abs, r[3]!);
          const desc = `S hostile: folder ${rel} -> symlink to ${target}`;
          const why = linked('S', rel);
          if (why) return { desc, result: why };
          if (dirname(rel) !== '.' && !isDir('S', dirname(rel))) return { desc, result: 'skip (no parent)' };
          if (exists('S', rel) && !isDir('S', rel)) return { desc, result: 'skip (not a folder)' };
          const had = exists('S', rel);
          const before = hashesUnder('S', rel);
          try {
            if (had) rmSync(abs, { recursive: true, force: true, maxRetries: 3 });
            symlinkSync(target, abs);
          } catch (e) {
            afterDestroy('S', before);
            return { desc, result: errCode(e) };
          }
          afterDestroy('S', before);
          soakDone.hostile++;
          return { desc, result: had ? `replaced the folder (${before.length} files)` : 'made (no folder was there)' };
        }
        if (k === 'link-to-dir') {
          const links = DIRS.filter((d) => isLink('S', d) && !linkOnPath(remote, dirname(d)));
          const decoys = ['id_decoy', pick(['victim', 'notes.txt', 'deep.txt', 'sub/deep.txt'], r[3]!)];
          if (!links.length)
            return { desc: `S hostile: folder symlink -> folder with ${decoys.join(', ')}`, result: 'skip (none)' };
          const rel = pick(links, r[2]!);
          const abs = join(remote, rel);
          const desc = `S hostile: symlink ${rel} (to ${readLink(abs)}) -> folder with ${decoys.join(', ')}`;
          try {
            unlinkSync(abs);
            mkdirSync(abs);
          } catch (e) {
            return { desc, result: errCode(e) };
          }
          soakDone.hostile++;
          const results = decoys.map(
            (d, j) =>
              `${d}: ${write('S', `${rel}/${d}`, 20 + Math.floor(r[4]! * 2000), Math.floor(r[5 + j]! * 2 ** 32), i)}`,
          );
          return { desc, result: results.join(', ') };
        }
        if (k === 'file-to-link') {
          const rel = r[3]! < 0.3 ? anyLiveFile('S', r[2]!) : pick(FILE_PATHS, r[2]!);
          if (!rel) return { desc: 'S hostile: file -> symlink', result: 'skip (no file)' };
          const abs = join(remote, rel);
          const target = fileLinkTarget(abs, r[4]!);
          const desc = `S hostile: file ${rel} -> symlink to ${target}`;
          const why = linked('S', rel);
          if (why) return { desc, result: why };
          if (!isFile('S', rel)) return { desc, result: 'skip (absent)' };
          const before = hashesUnder('S', rel);
          try {
            unlinkSync(abs);
            symlinkSync(target, abs);
          } catch (e) {
            afterDestroy('S', before);
            return { desc, result: errCode(e) };
          }
          afterDestroy('S', before);
          soakDone.hostile++;
          return { desc, result: 'replaced' };
        }
        // link-to-file
        const links = safeLive(remote)
          .filter((f) => !isSlowPath(f) && isLink('S', f) && !linkOnPath(remote, dirname(f)))
          .sort();
        if (!links.length) return { desc: 'S hostile: symlink -> file', result: 'skip (no symlink)' };
        const rel = pick(links, r[2]!);
        const abs = join(remote, rel);
        const desc = `S hostile: symlink ${rel} (to ${readLink(abs)}) -> file`;
        try {
          unlinkSync(abs);
        } catch (e) {
          return { desc, result: errCode(e) };
        }
        soakDone.hostile++;
        return { desc, result: write('S', rel, pickSize(r[3]!, r[4]!), Math.floor(r[5]! * 2 ** 32), i) };
      };

      /** Whether the sentinel is as it was made (a sentinel removed whole counts as changed). */
      const sentinelOk = () => {
        try {
          return sentinelIntact(sentinel);
        } catch {
          return false;
        }
      };
      /** Sentinel files' content found in a root (the walk can meet files that vanish meanwhile). */
      const leaksIn = (s: Site): string[] | undefined => {
        try {
          return sentinelLeaks(sentinel, root(s));
        } catch {
          return undefined;
        }
      };

      const t0 = Date.now();
      try {
        for (let i = 0; i < OPS; i++) {
          // A fixed number of draws per operation, so the seed fixes the sequence of intended operations.
          const r = Array.from({ length: 10 }, rng);
          const kind = r[0]!;
          // Draws 7 and 8 pick a soak op (issue 15); a disabled one is the ordinary op of draws 0–6.
          const soakKind = r[7]! < SOAK_RATE ? soakKindOf(r[8]!) : undefined;
          let desc: string;
          let result = '';
          if (soakKind && SOAK.has(soakKind)) {
            ({ desc, result } = await soakOp(soakKind, r, i));
          } else if (kind < 0.3) {
            const s = siteOf(r[1]!);
            const rel = pick(FILE_PATHS, r[2]!);
            desc = `${s} create/overwrite ${rel}`;
            result = write(s, rel, pickSize(r[3]!, r[4]!), Math.floor(r[5]! * 2 ** 32), i);
          } else if (kind < 0.45) {
            const s = siteOf(r[1]!);
            const rel = pick(FILE_PATHS, r[2]!);
            desc = `${s} modify ${rel}`;
            result = isFile(s, rel)
              ? write(s, rel, pickSize(r[3]!, r[4]!), Math.floor(r[5]! * 2 ** 32), i)
              : 'skip (absent)';
          } else if (kind < 0.55) {
            const s = siteOf(r[1]!);
            // Mostly the name set; sometimes any live file (conflict copies, files in renamed dirs).
            const rel = r[3]! < 0.2 ? anyLiveFile(s, r[2]!) : pick(FILE_PATHS, r[2]!);
            desc = `${s} delete ${rel}`;
            const why = rel && linked(s, rel);
            if (why) result = why;
            else if (rel && isFile(s, rel)) {
              const before = hashesUnder(s, rel);
              try {
                unlinkSync(join(root(s), rel));
                result = 'deleted';
              } catch (e) {
                result = `skip (${(e as NodeJS.ErrnoException).code})`;
              }
              afterDestroy(s, before);
            } else result = 'skip (absent)';
          } else if (kind < 0.63) {
            const s = siteOf(r[1]!);
            const from = r[4]! < 0.2 ? anyLiveFile(s, r[2]!) : pick(FILE_PATHS, r[2]!);
            const to = pick(FILE_PATHS, r[3]!);
            desc = `${s} rename ${from} -> ${to}`;
            const why = from && linked(s, from, to);
            if (why) result = why;
            else if (!from || !isFile(s, from)) result = 'skip (absent)';
            else if (exists(s, to)) result = 'skip (target exists)';
            else {
              try {
                mkdirSync(dirname(join(root(s), to)), { recursive: true });
                renameSync(join(root(s), from), join(root(s), to));
                result = 'renamed';
              } catch (e) {
                result = `skip (${(e as NodeJS.ErrnoException).code})`;
              }
            }
          } else if (kind < 0.67) {
            const s = siteOf(r[1]!);
            const rel = pick(DIRS, r[2]!);
            desc = `${s} mkdir ${rel}`;
            const why = linked(s, rel);
            if (why) result = why;
            else
              try {
                mkdirSync(join(root(s), rel), { recursive: true });
                result = 'ok';
              } catch (e) {
                result = `skip (${(e as NodeJS.ErrnoException).code})`;
              } finally {
                racedIntoLink(s, rel, i);
              }
          } else if (kind < 0.7) {
            const s = siteOf(r[1]!);
            const rel = pick(DIRS, r[2]!);
            desc = `${s} rm -r ${rel}`;
            const why = linked(s, rel);
            if (why) result = why;
            else if (isDir(s, rel)) {
              const before = hashesUnder(s, rel);
              try {
                rmSync(join(root(s), rel), { recursive: true, force: true, maxRetries: 3 });
                result = `removed (${before.length} files)`;
              } catch (e) {
                result = `partly (${(e as NodeJS.ErrnoException).code})`;
              }
              afterDestroy(s, before);
            } else result = 'skip (absent)';
          } else if (kind < 0.73) {
            const s = siteOf(r[1]!);
            const from = pick(DIRS, r[2]!);
            const to = pick(DIRS, r[3]!);
            desc = `${s} rename dir ${from} -> ${to}`;
            const why = linked(s, from, to);
            if (why) result = why;
            else if (!isDir(s, from)) result = 'skip (absent)';
            else if (to === from || to.startsWith(from + '/')) result = 'skip (into itself)';
            else if (exists(s, to)) result = 'skip (target exists)';
            else if (!isDir(s, dirname(to)) && dirname(to) !== '.') result = 'skip (no parent)';
            else {
              try {
                renameSync(join(root(s), from), join(root(s), to));
                result = 'renamed';
              } catch (e) {
                result = `skip (${(e as NodeJS.ErrnoException).code})`;
              }
            }
          } else if (kind < 0.8) {
            const k = clientOf(r[1]!);
            desc = `${k} lipsync sync`;
            result = (await oneShot(k, i)).text;
            observe([k, 'S']);
          } else if (kind < 0.84) {
            const k = clientOf(r[1]!);
            desc = `${k} start daemon`;
            if (daemonRunning(k)) result = 'skip (running)';
            else {
              try {
                await start(clients[k]);
                result = 'started';
              } catch (e) {
                problems.push(`op${i}: daemon ${k} did not start: ${(e as Error).message.slice(0, 2000)}`);
                result = 'FAILED to start';
              }
            }
          } else if (kind < 0.87) {
            const k = clientOf(r[1]!);
            desc = `${k} stop daemon (SIGINT)`;
            result = daemonRunning(k) ? `exit ${await stopDaemon(k)}` : 'skip (not running)';
            observe([k, 'S']);
          } else if (kind < 0.9) {
            const k = clientOf(r[1]!);
            if (kills >= MAX_KILLS) {
              desc = `${k} kill -9`;
              result = 'skip (kill budget used)';
            } else if (daemonRunning(k)) {
              kills++;
              desc = `${k} kill -9 daemon`;
              const d = clients[k].daemon!;
              await kill9(clients[k]);
              daemonOutputs.push(`${k} (killed): ${d.output()}`);
              result = 'killed';
            } else {
              kills++;
              const ms = 100 + Math.floor(r[2]! * 1500);
              desc = `${k} kill -9 a one-shot sync after ${ms} ms`;
              result = `exit ${await killedSync(clients[k], ms)}`;
            }
            observe([k, 'S']);
          } else if (kind < 0.93) {
            const k = clientOf(r[1]!);
            if (daemonRunning(k) || r[2]! < 0.5) {
              desc = `${k} drop ssh connections`;
              result = `${dropConnections(clients[k])} ssh processes killed`;
            } else {
              const ms = 300 + Math.floor(r[3]! * 2500);
              desc = `${k} sync, ssh dropped after ${ms} ms`;
              const p = oneShot(k, i);
              await sleep(ms);
              const n = dropConnections(clients[k]);
              result = `${n} ssh processes killed, sync ${(await p).text}`;
              observe([k, 'S']);
            }
          } else {
            const ms = 50 + Math.floor(r[1]! * 750);
            desc = `pause ${ms} ms`;
            if (daemonRunning('A') || daemonRunning('B')) await sleep(ms);
            else result = 'skip (no daemon)';
            await confirmIfAsked('A');
            await confirmIfAsked('B');
            observe(['A', 'B', 'S']);
          }
          note(`#${i} +${Date.now() - t0}ms ${desc}${result ? ' → ' + result : ''}`);
          if (/kill -9|drop|dropped/.test(desc) && !/^skip/.test(result))
            interruptions.push({ at: Date.now(), what: `#${i} ${desc}` });
          // Where the sentinel first changed, and (every 25 ops) where its content first reached a root.
          if (!sentinelChangedAt && !sentinelOk()) {
            sentinelChangedAt = `#${i} (${desc})`;
            note(`   SENTINEL CHANGED: ${entryChanges(sentinelBefore, entriesOf(sentinel.dir)).join('; ')}`);
          }
          if (!firstLeak && i % 25 === 24)
            for (const s of SITES) {
              const leaks = leaksIn(s);
              if (leaks?.length && !firstLeak) {
                firstLeak = `first seen after #${i} on ${s}: ${leaks.join(', ')}`;
                note(`   SENTINEL LEAK ${firstLeak}`);
              }
            }
          // The slow writers run on timers: let them in between ops that never wait.
          await new Promise((res) => setImmediate(res));
        }
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${context()}`);
      }

      // ---- settle ----
      // The slow writers end first (each ends within 4 s of its start): the settle syncs what they wrote whole.
      const w0 = Date.now();
      await Promise.all([...writers]);
      note(
        `writers done (waited ${Date.now() - w0} ms): ${soakDone.slow} slow writes ended, ${soakDone.slowFailed} failed; ` +
          `${soakDone.hostile} hostile changes on the server`,
      );
      for (const k of ['A', 'B'] as const) if (daemonRunning(k)) await stopDaemon(k);
      observe(['A', 'B', 'S']);
      note(`settle after ${Date.now() - t0}ms`);
      let settled: string;
      try {
        const { rounds } = await settle([a, b], { maxRounds: 10, context: `seed=${seed}`, autoConfirm: true });
        settled = `settled in ${rounds} rounds`;
      } catch (e) {
        settled = `did not settle: ${(e as Error).message}`;
      }
      note(settled);
      note(`done after ${Date.now() - t0}ms`);

      // ---- issue 15: nothing outside the roots changed, nothing of it leaked in ----
      // (Checked before the settle's verdict: they hold whether or not the trees converged.)
      const siteName: Record<Site, string> = {
        S: `the server folder ${remote} (its .lipsync/trash included)`,
        A: `laptop A's root ${a.local} (its .lipsync included)`,
        B: `laptop B's root ${b.local} (its .lipsync included)`,
      };
      const sentinelChanges = entryChanges(sentinelBefore, entriesOf(sentinel.dir));
      const racedNote = raced.length
        ? `\n(the test's own writes that found a symlink on their path right after: ${raced.join('; ')})`
        : '';
      expect
        .soft(
          sentinelOk(),
          `INVARIANT sentinel intact FAILED: the folder outside every root that the server's symlinks point at ` +
            `(${sentinel.dir}) changed, first seen after op ${sentinelChangedAt ?? '(only at the end)'}:\n  ` +
            `${sentinelChanges.join('\n  ')}${racedNote}\n${context()}`,
        )
        .toBe(true);
      for (const s of SITES) {
        const leaks = leaksIn(s) ?? leaksIn(s) ?? ['(could not walk the tree)'];
        expect
          .soft(
            leaks,
            `INVARIANT no sentinel leak FAILED: ${siteName[s]} holds files with the sentinel's content ` +
              `(marker ${sentinel.marker}) at: ${leaks.join(', ')}${firstLeak ? ` (${firstLeak})` : ''}\n${context()}`,
          )
          .toEqual([]);
      }
      const outside = [remote, a.local, b.local].map((r) => join(dirname(r), OUTSIDE)).filter(present);
      expect
        .soft(
          outside,
          `INVARIANT nothing made outside the roots FAILED: something exists where the server's dangling ` +
            `relative symlinks point (../${OUTSIDE} from each root): ${outside.join(', ')}\n${context()}`,
        )
        .toEqual([]);

      // ---- issue 15: a file with one writer never gets a conflict copy ----
      const copyRe = / \(conflicted copy [^)]*\)/;
      const slowCopies: string[] = [];
      for (const s of SITES)
        for (const f of safeLive(root(s)).filter(isSlowPath).sort()) {
          if (!copyRe.test(f)) continue;
          const orig = f.replace(copyRe, '');
          const w = slowFiles.get(orig);
          slowCopies.push(
            `${s}:${f} (a conflict copy of ${orig}` +
              (w
                ? `, whose one writer is on ${w.site}: ${w.history.join('; ')}${whileWritten(w)})`
                : ', not a slow-written file)'),
          );
        }
      expect
        .soft(
          slowCopies.length,
          `INVARIANT no conflict copy of a single-writer file FAILED: ${slowCopies.length} conflict copies ` +
            `of slow-written files:\n  ${slowCopies.join('\n  ')}\n${context()}`,
        )
        .toBe(0);
      const slowConflicts: string[] = [];
      for (const k of ['A', 'B'] as const) {
        try {
          for (const c of await conflicts(clients[k]))
            if (isSlowPath(c.path) || isSlowPath(c.copyPath))
              slowConflicts.push(
                `${k}: ${c.path} -> ${c.copyPath} (local ${c.local?.origin}, remote ${c.remote?.origin})`,
              );
        } catch (e) {
          problems.push(`${k}: lipsync conflicts --json failed at the end: ${(e as Error).message.slice(0, 500)}`);
        }
      }
      expect
        .soft(
          slowConflicts,
          `INVARIANT no conflict of a single-writer file FAILED: lipsync conflicts lists slow-written files\n${context()}`,
        )
        .toEqual([]);
      /** How many ops of these kinds the stream is expected to hold. */
      const expectedOps = (kinds: SoakKind[]) =>
        OPS * SOAK_RATE * SOAK_WEIGHTS.reduce((n, [k, w]) => n + (kinds.includes(k) && SOAK.has(k) ? w : 0), 0);
      // The new kinds did something (when at least 12 of their ops are expected: not by chance none).
      if (expectedOps(['pieces', 'log-open', 'log-reopen']) >= 12)
        expect.soft(soakDone.slow, `no slow writer ended; seed=${seed}`).toBeGreaterThan(0);
      if (expectedOps(['dir-to-link', 'file-to-link']) >= 12)
        expect.soft(soakDone.hostile, `no hostile change was made; seed=${seed}`).toBeGreaterThan(0);

      expect(settled, `${context()}\n`).toMatch(/^settled/);
      const ta = treeSnapshot(a.local);
      const tb = treeSnapshot(b.local);
      const ts = treeSnapshot(remote);
      expect.soft(treeDiff('A', ta, 'S', ts), `A and the server differ; ${context()}`).toBe('');
      expect.soft(treeDiff('B', tb, 'S', ts), `B and the server differ; ${context()}`).toBe('');
      // No temporary or partial file is visible (none of our names starts with a dot).
      const hidden = [...ts.keys()].filter((p) => p.split('/').some((part) => part.startsWith('.')));
      expect.soft(hidden, `temporary files left visible; ${context()}`).toEqual([]);

      // Every version that existed whole somewhere and was not destroyed by the test itself survives.
      const everywhere = new Set<string>();
      for (const s of ['A', 'B', 'S'] as Site[]) for (const h of siteHashes(s)) everywhere.add(h);
      const lost = [...versions.values()].filter((v) => v.holders.size > 0 && !everywhere.has(v.hash));
      const describeLost = lost
        .slice(0, 20)
        .map((v) => `  ${v.hash.slice(0, 12)} (${v.size} B) written ${v.origin}, held by ${[...v.holders].join(',')}`)
        .join('\n');
      expect.soft(lost.length, `${lost.length} versions lost:\n${describeLost}\n${context()}`).toBe(0);
      // The test wrote and kept track of a fair number of versions (it did something).
      expect.soft(versions.size, `seed=${seed}`).toBeGreaterThan(OPS / 10);
      // ---- issue 15: every side holds the complete content of each slow-written file ----
      const slowBad: string[] = [];
      for (const f of [...slowFiles.values()].sort((x, y) => (x.rel < y.rel ? -1 : 1))) {
        if (f.failed || !f.expected) continue; // A writer that failed is a problem of its own (below).
        const want = f.expected;
        for (const s of SITES) {
          const got = readSide(s, f.rel);
          if (got instanceof Buffer && got.equals(want)) continue;
          slowBad.push(
            `${f.rel} on ${s}: ${describeGot(got, want)}; expected ${want.length} B ${sha256(want).slice(0, 12)} ` +
              `(one writer, on ${f.site}: ${f.history.join('; ')}${whileWritten(f)})`,
          );
        }
      }
      expect
        .soft(
          slowBad,
          `INVARIANT complete content of single-writer files FAILED: ${slowBad.length} (file, side)s wrong\n${context()}`,
        )
        .toEqual([]);
      expect
        .soft(
          ownSideBad,
          `INVARIANT a single writer's file is not changed under it FAILED: right after a slow writer closed its ` +
            `file, its own side held something else (the engine pulled or renamed it while it was written)\n${context()}`,
        )
        .toEqual([]);
      expect.soft(problems, `problems during the run; ${context()}`).toEqual([]);
    },
    // About 0.75 s per op on a loaded 2-core machine with the slow writers; room for twice that.
    Math.max(420_000, OPS * 1500),
  );
});
