// What the one-row benches (restart, burst, idle-memory, first-sync) share: their options, their log and
// time formats, and their setup: the build, the cached tree (used in place as client A), the
// bench sshd (with --net other than loopback, behind the relay of that profile) and a work folder.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, buildEngine } from './harness.mjs';
import { startBenchSshd } from './sshvariant.mjs';
import { ensureTree } from './tree.mjs';
import { loadApiClient } from './daemon.mjs';
import { median, percentile, sh } from './util.mjs';
import { NET_ALIAS, describeNet, measureLink, netProfile, throughRelay } from './net.mjs';

/** --files, --seed, --skip-build, --net, and the bench's own options. */
export function oneRowOptions(extra = {}) {
  return parseArgs({
    options: {
      files: { type: 'string', default: '100000' },
      seed: { type: 'string', default: '1' },
      'skip-build': { type: 'boolean', default: false },
      net: { type: 'string', default: 'loopback' },
      ...extra,
    },
  }).values;
}
export const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);
export const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
export const summary = (xs) => `p50 ${fmt(median(xs))}, p95 ${fmt(percentile(xs, 95))} (n=${xs.length})`;

/** With --net other than loopback: the profile's name and the results header line (set by oneRowSetup). */
let net = null;

/**
 * Builds (unless --skip-build), then the tree, the sshd and a work folder `lipsync-NAME-*`. With
 * --net other than loopback, `fast` and `host` reach the sshd through the relay (measured first).
 */
export async function oneRowSetup(opt, name) {
  const profile = netProfile(opt.net);
  if (!opt['skip-build']) {
    const b = buildEngine();
    if (!b.ok) throw new Error(`build failed:\n${b.output}`);
  }
  await loadApiClient();
  const N = Number(opt.files);
  const tree = ensureTree(join(ROOT, 'bench/cache'), N, Number(opt.seed), log);
  const started = await startBenchSshd();
  const { server } = started;
  const fast = profile ? await throughRelay(started.fast, server, profile) : started.fast;
  const work = mkdtempSync(join(tmpdir(), `lipsync-${name}-`));
  let link = null;
  if (profile) {
    link = await measureLink(fast, work, profile);
    net = { name: opt.net, line: describeNet(opt.net, profile, link) };
    log(net.line);
  }
  return {
    N,
    A: tree.dir,
    server,
    fast,
    host: profile ? NET_ALIAS : server.alias,
    rsh: `ssh -F ${fast.sshConfigFile}`,
    work,
    /** With --net other than loopback: what measureLink measured ({ rttMs, … }); else null. */
    link,
  };
}

/** Prints the result table and writes it to bench/results/<date>-<files>-<name>[-<net>].md. */
export function writeResult(lines, N, name) {
  const table = (net ? [net.line, '', ...lines] : lines).join('\n');
  console.log(table);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(
    join(ROOT, 'bench/results', `${new Date().toISOString().slice(0, 10)}-${N}-${name}${net ? `-${net.name}` : ''}.md`),
    table,
  );
}

/** Stops the daemon `d` and the sshd, removes what the bench left in client A (`.lipsync/`, `extra`) and its work folder. */
export async function oneRowTeardown(setup, d, extra = []) {
  await d?.stop();
  for (const n of ['.lipsync', ...extra]) rmSync(join(setup.A, n), { recursive: true, force: true });
  await setup.fast.stop();
  await setup.server.stop();
  await sh('ionice', ['-c3', 'rm', '-rf', setup.work]);
}
