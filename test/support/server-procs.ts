/**
 * The server's side of the shared watcher (remote/journal.ts, rules J1–J7 of
 * docs/sync-semantics.md), seen from the tests: the harness sshd runs on this
 * machine, so the server's processes are processes here, found in /proc.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface Proc {
  pid: number;
  args: string[];
}

/** Live (not zombie) processes whose argv passes `match`. */
export function procsWhere(match: (args: string[]) => boolean): Proc[] {
  const out: Proc[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2)[0] === 'Z') continue;
      if (match(args)) out.push({ pid: Number(entry), args });
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

/** The processes of the shared watcher name themselves: `lipsync watcher|journal ROOT`, `lipsync follower ID ROOT`. */
const titled = (title: string) => (a: string[]) => a[0] === title;

/** The shared watcher's walkwatch (`lipsync watcher ROOT`). */
export const watchersOn = (root: string): number[] => procsWhere(titled(`lipsync watcher ${root}`)).map((p) => p.pid);
/** The shared watcher's journal writer (`lipsync journal ROOT`). */
export const writersOn = (root: string): number[] => procsWhere(titled(`lipsync journal ${root}`)).map((p) => p.pid);
/** The clients' followers (`lipsync follower ID ROOT`), one per client session. */
export const followersOn = (root: string): number[] =>
  procsWhere((a) => (a[0] ?? '').startsWith('lipsync follower ') && (a[0] ?? '').endsWith(` ${root}`)).map(
    (p) => p.pid,
  );
/** The follower of client `id`. */
export const followerOf = (root: string, id: string): number | undefined =>
  procsWhere(titled(`lipsync follower ${id} ${root}`))[0]?.pid;
/** Every shared-watcher process of a folder at or below `dir` (to end them before removing it). */
export const sharedProcsUnder = (dir: string): number[] =>
  procsWhere((a) => /^lipsync (watcher|journal|follower) /.test(a[0] ?? '') && (a[0] ?? '').includes(` ${dir}/`)).map(
    (p) => p.pid,
  );
/** Watchers of a client that watches alone: walkwatch (`perl -e WALKWATCH -- ROOT …`) or `inotifywait … ROOT`. */
export const loneWatchersOn = (root: string): number[] =>
  procsWhere(
    (a) => (a[0] === 'perl' && a[1] === '-e' && a[4] === root) || (/inotifywait$/.test(a[0] ?? '') && a.includes(root)),
  ).map((p) => p.pid);

/** The inode numbers watched by inotify watches these processes hold (one per watch). */
export function watchedInodesOf(pids: number[]): number[] {
  const inodes: number[] = [];
  for (const pid of pids) {
    for (const fd of readdirSync(`/proc/${pid}/fdinfo`)) {
      try {
        for (const l of readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n')) {
          const m = /^inotify wd:\S+ ino:([0-9a-f]+)/.exec(l);
          if (m) inodes.push(parseInt(m[1]!, 16));
        }
      } catch {
        // Closed meanwhile.
      }
    }
  }
  return inodes;
}

/** inotify watches held by these processes. */
export const watchesOf = (pids: number[]): number => watchedInodesOf(pids).length;

/**
 * What a failure report needs: every process naming a path at or below `root` (long
 * arguments, the inline scripts, shortened), and the journal folder: each entry with its size
 * and age, the contents of owner, horizon and watcher.log, the client files' ages.
 */
export function serverReport(root: string): string {
  const lines: string[] = ['processes naming the server folder:'];
  const short = (a: string) => (a.length > 120 ? `<${a.length} chars>` : JSON.stringify(a));
  for (const p of procsWhere((a) => a.some((x) => x === root || x.startsWith(`${root}/`) || x.includes(` ${root}`)))) {
    let ppid = '?';
    try {
      const st = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      ppid = st.slice(st.lastIndexOf(')') + 2).split(' ')[1] ?? '?';
    } catch {
      // Gone.
    }
    lines.push(
      `  ${p.pid} (ppid ${ppid}, ${watchesOf([p.pid])} watches): ${p.args.filter(Boolean).map(short).join(' ')}`,
    );
  }
  const J = join(root, '.lipsync', 'journal');
  lines.push(`${J}:`);
  if (!existsSync(J)) return [...lines, '  (missing)'].join('\n');
  const now = Date.now();
  const describe = (rel: string) => {
    try {
      const st = statSync(join(J, rel));
      return `${rel}${st.isDirectory() ? '/' : ''} ${st.size} B, ${((now - st.mtimeMs) / 1000).toFixed(1)} s old`;
    } catch (e) {
      return `${rel}: ${(e as Error).message}`;
    }
  };
  for (const name of readdirSync(J).sort()) {
    lines.push(`  ${describe(name)}`);
    if (name === 'clients') for (const c of readdirSync(join(J, name))) lines.push(`    ${describe(`clients/${c}`)}`);
    if (['owner', 'horizon', 'watcher.log'].includes(name)) {
      try {
        lines.push(`    = ${JSON.stringify(readFileSync(join(J, name), 'utf8').slice(-2000))}`);
      } catch (e) {
        lines.push(`    ${(e as Error).message}`);
      }
    }
  }
  return lines.join('\n');
}

/** SIGKILL to each pid; one already gone is fine (a writer ends by itself once its watcher is killed). */
export function killAll(pids: number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ESRCH') throw e;
    }
  }
}
