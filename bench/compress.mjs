#!/usr/bin/env node
// rsync compression (issue 18 §1) in one row: the first sync of a tree of source-like text and of a
// tree of already-compressed files (random bytes named .gz/.zip/.jpg), each with the pair's
// `compression` setting off, on and auto, timed from the daemon's start until it is up to date,
// against plain `rsync -a` and `rsync -az` of the same tree through the same link. The runs are
// interleaved (per rep and tree: rsync -a, lipsync off, rsync -az, lipsync on, lipsync auto), every
// destination starts empty. Bytes on the wire: rsync's --stats "Total bytes sent" for the peers.
// Usage: node bench/compress.mjs [--files 2000] [--mb 20] [--reps 1] [--skip-build] [--net loopback|broadband|far]
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { prng } from './lib/tree.mjs';
import { discard, median, sh, shOk } from './lib/util.mjs';
import { BIN, collectPhases, makeEnv, readLog, startDaemon, waitUpToDate } from './lib/daemon.mjs';
import { fmt, log, oneRowOptions, oneRowSetup, oneRowTeardown, writeResult } from './lib/onerow.mjs';

const opt = oneRowOptions({
  files: { type: 'string', default: '2000' },
  mb: { type: 'string', default: '20' },
  reps: { type: 'string', default: '1' },
});
const REPS = Number(opt.reps);

const WORDS = (
  'const let var function return if else for while switch case break continue new this class extends ' +
  'import export from async await try catch finally throw typeof instanceof null undefined true false ' +
  'string number boolean void interface type readonly private public static get set of in as'
).split(' ');
const NAMES = (
  'path root local remote entry state file dir size mtime name list item result error options config ' +
  'buffer chunk offset length count index value key map set queue handler callback signal timer pair ' +
  'cycle base scan watch stat record update delete rename conflict trash marker lock session'
).split(' ');

/** Source-like text of about `bytes` bytes: indented lines of keywords, identifiers, numbers, comments. */
function sourceText(rnd, bytes) {
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const ident = () => pick(NAMES) + (rnd() < 0.5 ? pick(NAMES).replace(/^./, (c) => c.toUpperCase()) : '');
  const lines = [];
  let n = 0,
    depth = 0;
  while (n < bytes) {
    const r = rnd();
    let line;
    if (r < 0.1) line = `// ${Array.from({ length: 4 + Math.floor(rnd() * 8) }, () => pick(NAMES)).join(' ')}`;
    else if (r < 0.2 && depth < 6) {
      line = `${pick(['if', 'for', 'while'])} (${ident()} ${pick(['<', '===', '!==', '>='])} ${Math.floor(rnd() * 1e4)}) {`;
      depth++;
    } else if (r < 0.3 && depth > 0) {
      line = '}';
      depth--;
    } else
      line = `${pick(WORDS)} ${ident()} = ${ident()}.${ident()}(${ident()}, ${Math.floor(rnd() * 1e6)}, '${pick(NAMES)}');`;
    line = '  '.repeat(depth) + line;
    lines.push(line);
    n += line.length + 1;
  }
  return lines.join('\n') + '\n';
}

/** `files` files of `bytes` bytes in all under `dir`, 100 a folder: text (kind 'text') or random bytes. */
function makeTree(dir, kind, files, bytes, seed) {
  const rnd = prng(seed);
  const per = Math.ceil(bytes / files);
  const exts = ['gz', 'zip', 'jpg'];
  let total = 0;
  for (let i = 0; i < files; i++) {
    const d = join(dir, `d${String(Math.floor(i / 100)).padStart(3, '0')}`);
    if (i % 100 === 0) mkdirSync(d, { recursive: true });
    let data;
    if (kind === 'text') data = Buffer.from(sourceText(rnd, per));
    else {
      data = Buffer.alloc(per);
      for (let j = 0; j + 4 <= per; j += 4) data.writeUInt32LE(Math.floor(rnd() * 4294967296), j);
    }
    writeFileSync(join(d, kind === 'text' ? `f${i}.ts` : `f${i}.${exts[i % 3]}`), data);
    total += data.length;
  }
  return total;
}

const setup = await oneRowSetup(opt, 'compress');
const { fast, host, rsh, work } = setup;
const FILES = Number(opt.files);
const BYTES = Number(opt.mb) * 1e6;
const trees = {
  text: { dir: join(work, 'text'), label: 'source-like text (.ts)' },
  packed: { dir: join(work, 'packed'), label: 'already compressed (.gz/.zip/.jpg)' },
};
for (const [k, t] of Object.entries(trees)) {
  t.bytes = makeTree(t.dir, k, FILES, BYTES, k === 'text' ? 11 : 12);
  const z = await sh('sh', ['-c', `tar -cf - -C ${t.dir} . | zstd -3 -c | wc -c`]);
  t.zstdRatio = t.bytes / Number(z.stdout.trim());
  log(`tree ${k}: ${FILES} files, ${(t.bytes / 1e6).toFixed(1)} MB, zstd -3 ratio ${t.zstdRatio.toFixed(2)}`);
}
await shOk('sync', []);

const runs = {}; // `${tree} ${what}` → { ms: [], sent: [], auto: [] }
const rec = (key) => (runs[key] ??= { ms: [], sent: [], auto: [] });
let n = 0;
const clear = async (dir) => {
  await discard(dir); // not removed between timed runs: see discard()
  await shOk('sync', []);
};

async function peer(tree, flags) {
  const dst = join(work, `dst-${++n}`);
  mkdirSync(dst);
  const r = await shOk('rsync', [flags, '--stats', '-e', rsh, `${trees[tree].dir}/`, `${host}:${dst}/`]);
  const sent = Number(/Total bytes sent: ([\d,.]+)/.exec(r.stdout)?.[1]?.replace(/[,.]/g, '') ?? NaN);
  const x = rec(`${tree} rsync ${flags}`);
  x.ms.push(r.ms);
  x.sent.push(sent);
  log(`${tree}: rsync ${flags} ${fmt(r.ms)}, ${(sent / 1e6).toFixed(1)} MB sent`);
  await clear(dst);
}

async function lipsync(tree, mode) {
  const dst = join(work, `dst-${++n}`);
  mkdirSync(dst);
  const e = makeEnv(join(work, `env-${n}`), fast.sshConfigFile, { LIPSYNC_TRACE: '1' });
  const src = trees[tree].dir;
  await shOk(process.execPath, [BIN, 'add', src, `${host}:${dst}`, '--id', 'c', '--compress', mode], { env: e.env });
  const t0 = performance.now();
  const d = await startDaemon(e);
  let ms, out;
  try {
    await waitUpToDate(e, 0, 3_600_000, 50);
    ms = performance.now() - t0;
    out = d.output();
  } finally {
    await d.stop();
  }
  // The folder pushes' own time (LIPSYNC_TRACE "rsync push N new folders", one after the other).
  const ph = collectPhases(out, 0, {});
  const rsyncMs = Object.entries(ph)
    .filter(([k]) => /^rsync push N new folders/.test(k))
    .reduce((a, [, v]) => a + v.dur.reduce((x, y) => x + y, 0), 0);
  const chose = readLog(e)
    .filter((r) => r.event === 'state' && r.msg.startsWith('compression '))
    .map((r) => r.msg);
  const x = rec(`${tree} lipsync ${mode}`);
  x.ms.push(ms);
  x.rsync = [...(x.rsync ?? []), rsyncMs];
  // Every decision of the run, in order (auto may change its mind as the link is measured).
  if (mode === 'auto') x.auto.push(chose.map((m) => m.replace(/^compression /, '')).join(' → ') || 'nothing logged');
  log(
    `${tree}: lipsync ${mode} ${fmt(ms)}, of which rsync ${fmt(rsyncMs)}${chose.length ? ` (${chose.join('; ')})` : ''}`,
  );
  rmSync(join(src, '.lipsync'), { recursive: true, force: true });
  await clear(dst);
  await clear(e.dir);
}

try {
  for (let i = 0; i < REPS; i++)
    for (const tree of Object.keys(trees)) {
      await peer(tree, '-a');
      await lipsync(tree, 'off');
      await peer(tree, '-az');
      await lipsync(tree, 'on');
      await lipsync(tree, 'auto');
    }

  const mbps = (bytes, ms) => (bytes / 1e6 / (ms / 1000)).toFixed(1);
  const lines = [
    `# First sync with and without rsync compression, ${FILES} files a tree`,
    '',
    `Command: \`node bench/compress.mjs --files ${FILES} --mb ${opt.mb} --reps ${REPS} --net ${opt.net}\`, ${new Date().toISOString()}, load ${(await sh('cat', ['/proc/loadavg'])).stdout.trim()}.`,
    "Time: from the daemon's start until it is up to date (lipsync), the whole run (rsync); medians of the reps. " +
      "Sent: rsync's --stats \"Total bytes sent\". lipsync's rsync runs: the folder pushes' time inside lipsync's (LIPSYNC_TRACE).",
    '',
  ];
  for (const [tree, t] of Object.entries(trees)) {
    const a = median(rec(`${tree} rsync -a`).ms),
      az = median(rec(`${tree} rsync -az`).ms);
    lines.push(
      `## ${t.label}: ${(t.bytes / 1e6).toFixed(1)} MB (zstd -3 of the tar: ${t.zstdRatio.toFixed(2)}x)`,
      '',
      "| run | time | MB/s | / rsync -a | / rsync -az | sent | lipsync's rsync runs |",
      '|---|---|---|---|---|---|---|',
    );
    for (const what of ['rsync -a', 'rsync -az', 'lipsync off', 'lipsync on', 'lipsync auto']) {
      const x = rec(`${tree} ${what}`);
      const ms = median(x.ms);
      const sent = x.sent.length ? `${(median(x.sent) / 1e6).toFixed(1)} MB` : '';
      const inner = x.rsync ? fmt(median(x.rsync)) : '';
      const note = x.auto.length ? ` (${x.auto.map((a, i) => `rep ${i + 1}: ${a}`).join('; ')})` : '';
      lines.push(
        `| ${what}${note} | ${fmt(ms)} | ${mbps(t.bytes, ms)} | ${(ms / a).toFixed(2)} | ${(ms / az).toFixed(2)} | ${sent} | ${inner} |`,
      );
    }
    lines.push('');
  }
  writeResult(lines, FILES, 'compress');
} finally {
  await oneRowTeardown(setup, null);
  for (const t of Object.values(trees)) rmSync(t.dir, { recursive: true, force: true });
}
