import { performance } from 'node:perf_hooks';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
  const { children, comm } = processTable();
  const out = [];
  const queue = [...roots];
  const seen = new Set();
  while (queue.length) {
    const p = queue.shift();
    if (seen.has(p)) continue;
    seen.add(p);
    if (comm.has(p) && (!filter || filter(comm.get(p), p))) out.push(p);
    for (const c of children.get(p) ?? []) queue.push(c);
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
/** Samples the summed RSS of whatever pidsFn() returns every `ms`; stop() → peak bytes. */
export function rssSampler(pidsFn, ms = 100) {
  let peak = 0,
    samples = 0;
  const tick = () => {
    const v = rssOf(pidsFn());
    samples++;
    if (v > peak) peak = v;
  };
  tick();
  const timer = setInterval(tick, ms);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return { peak, samples };
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
