import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, renameSync, statfsSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Removing a copy of the tree between two timed runs slows the second one: on ext4 without a
 * journal (this machine's root), a new file does not take an inode freed in the last 60 s (longer
 * while the inode table is dirty) and the allocator checks each such inode in turn, which made
 * each file of the run after a 100k-file `rm -rf` cost ~0.8 ms in `openat` instead of ~0.05
 * (perf: recently_deleted() under __ext4_new_inode). So a copy is only renamed aside here (`.discarded-N` in the same
 * folder), and goes with the bench's work folder at the end; when the disk runs short of room or
 * inodes (<8 GB or <3M free), everything put aside is removed at once and the next run waits out
 * the 60 s.
 */
const discarded = [];
export async function discard(dir) {
  if (!existsSync(dir)) return;
  const aside = join(dirname(dir), `.discarded-${discarded.length + 1}-${basename(dir)}`);
  renameSync(dir, aside);
  discarded.push(aside);
  const fs = statfsSync(aside);
  if (fs.bavail * fs.bsize >= 8e9 && fs.ffree >= 3e6) return;
  while (discarded.length) await sh('rm', ['-rf', discarded.pop()]);
  await sleep(61_000);
}

/** Runs a command (argument array, no shell); resolves {code, stdout, stderr, ms}. */
export function sh(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    let stdout = '',
      stderr = '';
    child.stdout.on('data', (d) => {
      if (stdout.length < 4e6) stdout += d;
    });
    child.stderr.on('data', (d) => {
      if (stderr.length < 4e6) stderr += d;
    });
    opts.onSpawn?.(child);
    let timer;
    if (opts.timeoutMs) timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, ms: performance.now() - t0 });
    });
  });
}
export async function shOk(cmd, args, opts) {
  const r = await sh(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}):\n${r.stderr.slice(-3000)}`);
  return r;
}

/** ppid map of every process, from /proc. */
function processTable() {
  const children = new Map();
  const comm = new Map();
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const st = readFileSync(`/proc/${e}/stat`, 'utf8');
      const close = st.lastIndexOf(')');
      const fields = st.slice(close + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const pid = Number(e),
        ppid = Number(fields[1]);
      comm.set(pid, st.slice(st.indexOf('(') + 1, close));
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(pid);
    } catch {
      /* gone */
    }
  }
  return { children, comm };
}
export function treePids(roots, { filter } = {}) {
  return treeProcs(roots, { filter }).map((p) => p.pid);
}
/** The processes of the trees below `roots` (each root included): [{pid, comm}]. */
export function treeProcs(roots, { filter } = {}) {
  const { children, comm } = processTable();
  const out = [];
  const queue = [...roots];
  const seen = new Set();
  while (queue.length) {
    const p = queue.shift();
    if (seen.has(p)) continue;
    seen.add(p);
    if (comm.has(p) && (!filter || filter(comm.get(p), p))) out.push({ pid: p, comm: comm.get(p) });
    for (const c of children.get(p) ?? []) queue.push(c);
  }
  return out;
}
/** The command name of a process ('' when it is gone). */
export function commOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}
/**
 * A client's ssh ControlMaster: started by its first ssh (ControlPersist), it leaves the client's
 * process tree when that ssh ends (its parent becomes init), yet it is the client's: its sockets
 * are under the client's data folder, and it shows as `ssh: <socket> [mux]`.
 */
export function mastersOf(dataDir) {
  const out = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    try {
      if (readFileSync(`/proc/${e}/cmdline`, 'utf8').startsWith(`ssh: ${dataDir}/`)) out.push(Number(e));
    } catch {
      /* gone */
    }
  }
  return out;
}
export function rssOf(pids) {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kb * 1024;
}
/**
 * Summed PSS of `pids` in bytes (/proc/PID/smaps_rollup): each shared page (libc, libcrypto of
 * several ssh processes) counted once across them, where summed RSS counts it in each.
 */
export function pssOf(pids) {
  let kb = 0;
  for (const p of pids) {
    try {
      const m = /^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/smaps_rollup`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      /* gone */
    }
  }
  return kb * 1024;
}
/**
 * The memory the processes `pids` hold together, in bytes: every resident page once, however many
 * of them map it (a page of libcrypto mapped by five ssh counts once, as in PSS), and counted whole
 * when a process outside them maps it too (where PSS would give them only a share: on loopback the
 * test's sshd maps the same libcrypto). From /proc/PID/smaps (the mappings with pages resident) and
 * /proc/PID/pagemap (each page's physical frame number: root only). null where frame numbers cannot
 * be read (not root: the kernel shows them as 0).
 */
export function distinctOf(pids) {
  const frames = new Set();
  const buf = Buffer.alloc(1 << 20);
  let readable = false;
  for (const p of pids) {
    let smaps, fd;
    try {
      smaps = readFileSync(`/proc/${p}/smaps`, 'utf8');
      fd = openSync(`/proc/${p}/pagemap`, 'r');
    } catch {
      continue; // gone
    }
    try {
      let start = 0,
        end = 0;
      for (const line of smaps.split('\n')) {
        const head = /^([0-9a-f]+)-([0-9a-f]+) /.exec(line);
        if (head) {
          start = parseInt(head[1], 16) / 4096;
          end = parseInt(head[2], 16) / 4096;
          continue;
        }
        if (!line.startsWith('Rss:') || / 0 kB/.test(line)) continue;
        for (let page = start; page < end;) {
          const n = Math.min(end - page, buf.length / 8);
          const got = readSync(fd, buf, 0, n * 8, page * 8) / 8;
          for (let i = 0; i < got; i++) {
            const hi = buf.readUInt32LE(i * 8 + 4);
            if (!(hi & 0x80000000)) continue; // not present
            const pfn = (hi & 0x7fffff) * 2 ** 32 + buf.readUInt32LE(i * 8);
            if (pfn) readable = true;
            frames.add(pfn);
          }
          if (got < n) break;
          page += n;
        }
      }
    } catch {
      /* gone meanwhile */
    } finally {
      closeSync(fd);
    }
  }
  return readable ? frames.size * 4096 : null;
}
/** The samplers' highest distinctOf so far: read at a new summed-RSS peak and once a second (it costs more than RSS). */
function distinctPeak(best, pids, newPeak, samples, ms) {
  if (!newPeak && samples % Math.max(1, Math.round(1000 / ms)) !== 0) return best;
  const d = distinctOf(pids);
  return d === null ? best : Math.max(best ?? 0, d);
}
/** CPU time (user + system, ms) of one process so far, from /proc (null when it is gone). */
export function cpuMsOf(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in USER_HZ (100)
  } catch {
    return null;
  }
}
function cmdline(pid) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').slice(0, 120);
  } catch {
    return '';
  }
}
/** VmRSS, RssAnon and RssFile (+ RssShmem) of one process, in bytes (null when it is gone). */
export function rssParts(pid) {
  try {
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(st)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile') + kb('RssShmem') };
  } catch {
    return null;
  }
}
/**
 * Like rssSampler over the process tree below `rootPid`, and where the peak is made of: stop() →
 * {peak, peakPss (the highest summed PSS of any sample), samples, at (ms since start of the peak sample), wall (its Date.now()), cpuMs: CPU time of rootPid itself, parts: [{comm, n, rss, anon, file}] at the
 * peak (summed by command name), maxBy: {comm: the highest summed RSS of that command at any sample}}.
 */
export function rssTreeSampler(rootPid, ms = 100, { extra = () => [] } = {}) {
  let peak = 0,
    peakPss = 0,
    peakDistinct = null,
    samples = 0,
    at = 0,
    wall = 0,
    parts = [];
  const maxBy = {};
  const t0 = performance.now();
  const tick = () => {
    const by = new Map();
    let total = 0;
    for (const { pid, comm } of [...treeProcs([rootPid]), ...extra().map((pid) => ({ pid, comm: commOf(pid) }))]) {
      const r = rssParts(pid);
      if (!r) continue;
      total += r.rss;
      const g = by.get(comm) ?? { comm, n: 0, rss: 0, anon: 0, file: 0, each: [] };
      g.n++;
      g.each.push({ pid, rss: r.rss, anon: r.anon, cmd: cmdline(pid) });
      g.rss += r.rss;
      g.anon += r.anon;
      g.file += r.file;
      by.set(comm, g);
    }
    samples++;
    const pids = [...by.values()].flatMap((g) => g.each.map((e) => e.pid));
    peakPss = Math.max(peakPss, pssOf(pids));
    peakDistinct = distinctPeak(peakDistinct, pids, total > peak, samples, ms);
    for (const g of by.values()) maxBy[g.comm] = Math.max(maxBy[g.comm] ?? 0, g.rss);
    if (total > peak) {
      peak = total;
      at = performance.now() - t0;
      wall = Date.now();
      parts = [...by.values()].sort((a, b) => b.rss - a.rss);
    }
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peak, peakPss, peakDistinct, samples, at, wall, parts, maxBy, cpuMs: cpuMsOf(rootPid) };
    },
  };
}
/** Samples the summed RSS (and PSS) of whatever pidsFn() returns every `ms`; stop() → peak bytes of each. */
export function rssSampler(pidsFn, ms = 100) {
  let peak = 0,
    peakPss = 0,
    peakDistinct = null,
    samples = 0;
  const tick = () => {
    const pids = pidsFn();
    const v = rssOf(pids);
    samples++;
    peakDistinct = distinctPeak(peakDistinct, pids, v > peak, samples, ms);
    if (v > peak) peak = v;
    peakPss = Math.max(peakPss, pssOf(pids));
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peak, peakPss, peakDistinct, samples };
    },
  };
}

export function percentile(xs, p) {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n ? (n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : NaN;
};

export async function waitUntil(cond, timeoutMs, what, every = 20) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out (${timeoutMs} ms) waiting for ${what}`);
    await sleep(every);
  }
}
