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
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
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
  type Client,
} from '../support/twoway.js';

const seed = process.env.LIPSYNC_SEED ? Number(process.env.LIPSYNC_SEED) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
const OPS = process.env.LIPSYNC_OPS ? Number(process.env.LIPSYNC_OPS) : 300;
const RERUN = `LIPSYNC_SEED=${seed} LIPSYNC_OPS=${OPS} npx vitest run test/integration/convergence.test.ts`;

/** mulberry32: a small, fast, seedable PRNG giving floats in [0, 1). */
function mulberry32(a: number): () => number {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Site = 'A' | 'B' | 'S';

/** Four directory slots and four file names: 20 file paths, so collisions and conflicts really happen. */
const DIRS = ['d1', 'd2', 'd3', 'd1/d4'];
const PARENTS = ['', ...DIRS];
const NAMES = ['a.txt', 'b.txt', 'c.bin', 'notes'];
const FILE_PATHS = PARENTS.flatMap((p) => NAMES.map((n) => (p ? `${p}/${n}` : n)));

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
      writeFileSync(logFile, `seed=${seed} ops=${OPS}\nA=${a.local}\nB=${b.local}\nS=${remote}\n`);
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
      const exists = (s: Site, rel: string) => existsSync(join(root(s), rel));
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
        try {
          mkdirSync(dirname(abs), { recursive: true });
        } catch (e) {
          return `skip (mkdir parent: ${(e as NodeJS.ErrnoException).code})`;
        }
        if (exists(s, rel) && !isFile(s, rel)) return 'skip (not a file)';
        const before = hashesUnder(s, rel);
        const content = makeContent(`op${opNo} ${s} ${rel}\n`, size, contentSeed);
        try {
          writeFileSync(abs, content);
        } catch (e) {
          return `skip (${(e as NodeJS.ErrnoException).code})`;
        }
        const hash = sha256(content);
        const v = versions.get(hash) ?? { hash, size, origin: `op${opNo} ${s}:${rel}`, holders: new Set<Site>() };
        v.holders.add(s);
        versions.set(hash, v);
        afterDestroy(s, before);
        return `wrote ${size} B ${hash.slice(0, 10)}`;
      };

      const anyLiveFile = (s: Site, x: number): string | undefined => {
        const files = safeLive(root(s)).sort();
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

      const t0 = Date.now();
      try {
        for (let i = 0; i < OPS; i++) {
          // A fixed number of draws per operation, so the seed fixes the sequence of intended operations.
          const r = Array.from({ length: 7 }, rng);
          const kind = r[0]!;
          let desc: string;
          let result = '';
          if (kind < 0.3) {
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
            if (rel && isFile(s, rel)) {
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
            if (!from || !isFile(s, from)) result = 'skip (absent)';
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
            try {
              mkdirSync(join(root(s), rel), { recursive: true });
              result = 'ok';
            } catch (e) {
              result = `skip (${(e as NodeJS.ErrnoException).code})`;
            }
          } else if (kind < 0.7) {
            const s = siteOf(r[1]!);
            const rel = pick(DIRS, r[2]!);
            desc = `${s} rm -r ${rel}`;
            if (isDir(s, rel)) {
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
            if (!isDir(s, from)) result = 'skip (absent)';
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
        }
      } catch (e) {
        throw new Error(`${(e as Error).message}\n${context()}`);
      }

      // ---- settle ----
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
      expect.soft(problems, `problems during the run; ${context()}`).toEqual([]);
    },
    Math.max(420_000, OPS * 800),
  );
});
