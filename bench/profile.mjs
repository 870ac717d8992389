#!/usr/bin/env node
// Where does lipsync's first sync spend its time? Runs one `lipsync sync` (in-process engine,
// no daemon) of a cached tree to an empty server folder over the bench's sshd, under
// `strace -f -e trace=execve` (which programs it starts, how often) and `node --cpu-prof`
// (where the engine's own CPU goes). Builds first, as the other benches do.
// Usage: node bench/profile.mjs [--files 20000] [--seed 1] [--skip-build]
import { parseArgs } from 'node:util';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, buildEngine } from './lib/harness.mjs';
import { startBenchSshd } from './lib/sshvariant.mjs';
import { ensureTree } from './lib/tree.mjs';
import { sh, shOk } from './lib/util.mjs';

const { values: opt } = parseArgs({
  options: {
    files: { type: 'string', default: '20000' },
    seed: { type: 'string', default: '1' },
    'skip-build': { type: 'boolean', default: false },
  },
});
if (!opt['skip-build']) {
  const b = buildEngine();
  if (!b.ok) throw new Error(`build failed:\n${b.output}`);
}
const N = Number(opt.files);
const log = (...a) => console.error('[profile]', ...a);
const tree = ensureTree(join(ROOT, 'bench/cache'), N, Number(opt.seed), log);
const { server, fast } = await startBenchSshd();
const work = mkdtempSync(join(tmpdir(), 'lipsync-profile-'));
try {
  const A = join(work, 'a'),
    S = join(work, 's');
  await shOk('cp', ['-a', tree.dir, A]);
  mkdirSync(S);
  const configDir = join(work, 'config'),
    dataDir = join(work, 'data');
  mkdirSync(configDir);
  writeFileSync(
    join(configDir, 'config.json'),
    JSON.stringify({ version: 1, pairs: [], sshConfigFile: fast.sshConfigFile }),
  );
  const env = { ...process.env, LIPSYNC_CONFIG_DIR: configDir, LIPSYNC_DATA_DIR: dataDir };
  await shOk(process.execPath, [join(ROOT, 'bin/lipsync.js'), 'add', A, `${server.alias}:${S}`, '--id', 'p'], { env });
  for (const run of ['first sync', 'no-op sync (restart: full compare, nothing to do)']) {
    const prof = join(work, `prof-${run}`);
    const trace = join(work, `trace-${run}`);
    const r = await sh(
      'strace',
      [
        '-f',
        '-qq',
        '-ttt',
        '-s',
        '200',
        '-e',
        'trace=execve,exit_group',
        '-e',
        'signal=none',
        '-o',
        trace,
        process.execPath,
        '--cpu-prof',
        `--cpu-prof-dir=${prof}`,
        join(ROOT, 'bin/lipsync.js'),
        'sync',
      ],
      { env },
    );
    log(
      `lipsync sync (${run}) of ${N} files: ${(r.ms / 1000).toFixed(1)} s (under strace), exit ${r.code}: ${r.stdout.trim().split('\n').pop()}`,
    );
    // programs started
    const counts = {};
    for (const line of readFileSync(trace, 'utf8').split('\n')) {
      const m = /execve\("([^"]+)", \[(.*?)\]/.exec(line);
      if (!m || / = -1 /.test(line)) continue;
      const args = m[2].split('", "').map((s) => s.replace(/^"|"$/g, ''));
      let key = m[1].split('/').pop();
      if (key === 'ssh')
        key += args.includes('-O')
          ? ' -O (control)'
          : args.some((a) => a.startsWith('rsync'))
            ? ' (rsync transport)'
            : ' (remote command)';
      counts[key] = (counts[key] ?? 0) + 1;
    }
    console.log(`programs started during the ${run} of ${N} files:`, counts);
    // wall time of each ssh/rsync child: execve → exit_group of the same pid
    const startAt = new Map(),
      spans = [];
    for (const line of readFileSync(trace, 'utf8').split('\n')) {
      const m = /^(\d+)\s+([\d.]+) (execve|exit_group)\((.*)$/.exec(line);
      if (!m) continue;
      const [, pid, t, call, rest] = m;
      if (call === 'execve' && /^"[^"]*\/(ssh|rsync)"/.test(rest) && !/ = -1 /.test(rest))
        startAt.set(pid, { t: Number(t), what: rest.slice(0, 400) });
      else if (call === 'exit_group' && startAt.has(pid)) {
        const s0 = startAt.get(pid);
        spans.push({ ms: (Number(t) - s0.t) * 1000, what: s0.what });
        startAt.delete(pid);
      }
    }
    const kind = (w) =>
      w.startsWith('"/usr/bin/rsync')
        ? 'rsync'
        : /"rsync --server/.test(w)
          ? 'ssh→rsync'
          : /-O/.test(w)
            ? 'ssh -O'
            : 'ssh cmd';
    const agg = {};
    for (const sp of spans) {
      const k = kind(sp.what);
      agg[k] ??= { n: 0, ms: 0, max: 0 };
      agg[k].n++;
      agg[k].ms += sp.ms;
      agg[k].max = Math.max(agg[k].max, sp.ms);
    }
    console.log(
      'child wall time by kind (ms):',
      Object.fromEntries(
        Object.entries(agg).map(([k, v]) => [
          k,
          { n: v.n, total: Math.round(v.ms), mean: Math.round(v.ms / v.n), max: Math.round(v.max) },
        ]),
      ),
    );
    for (const sp of spans
      .filter((x) => kind(x.what) === 'ssh cmd')
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 6))
      console.log(`  ${Math.round(sp.ms)} ms: ${sp.what.slice(0, 300)}`);
    // cpu profile: self time per function
    const file = readdirSync(prof).find((f) => f.endsWith('.cpuprofile'));
    const p = JSON.parse(readFileSync(join(prof, file), 'utf8'));
    const self = new Map();
    const dt = p.timeDeltas.reduce((a, b) => a + b, 0) / p.samples.length;
    const byId = new Map(p.nodes.map((n) => [n.id, n]));
    for (const s of p.samples) {
      const n = byId.get(s);
      const cf = n.callFrame;
      const key = `${cf.functionName || '(anon)'} ${cf.url.replace(/^.*\/(out|node_modules)\//, '$1/')}:${cf.lineNumber + 1}`;
      self.set(key, (self.get(key) ?? 0) + dt);
    }
    const total = [...self.values()].reduce((a, b) => a + b, 0);
    const idle = self.get('(idle) :0') ?? 0;
    console.log(
      `node main thread: ${(total / 1e6).toFixed(1)} s sampled, of which idle (waiting for children/ssh) ${(idle / 1e6).toFixed(1)} s`,
    );
    for (const [k, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 25))
      console.log(`${(v / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
  }
} finally {
  await fast.stop();
  await server.stop();
  rmSync(work, { recursive: true, force: true });
}
