// Repro: a local change written ~0.3 s after the previous one reached the server is sometimes never
// pushed (until the hourly rescan). Run from the repo root: node bench/repro-lost-change.mjs [gapMs=300]
// Prints each change's latency in ms, or LOST (not on the server after 8 s), then the daemon's output.
import { loadHarness } from './lib/harness.mjs';
import { startVariant } from './lib/sshvariant.mjs';
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const h = await loadHarness();
const s = await h.startSshd();
const v = await startVariant(s, h.freePort, { name: 'fast', noBashrc: true });
const W = mkdtempSync('/tmp/repro-');
const A = join(W, 'a'),
  S = join(W, 's');
mkdirSync(A);
mkdirSync(S);
for (let i = 0; i < 50; i++) writeFileSync(join(A, `f${i}`), 'x'.repeat(1000 + i));
const cfg = join(W, 'cfg'),
  data = join(W, 'data');
mkdirSync(cfg);
writeFileSync(join(cfg, 'config.json'), JSON.stringify({ version: 1, pairs: [], sshConfigFile: v.sshConfigFile }));
const env = { ...process.env, LIPSYNC_CONFIG_DIR: cfg, LIPSYNC_DATA_DIR: data };
execFileSync('node', ['bin/lipsync.js', 'add', A, `lipsync-test:${S}`, '--id', 'a'], { env });
const d = spawn('node', ['bin/lipsync.js', 'run'], { env });
let out = '';
d.stdout.on('data', (x) => (out += x));
d.stderr.on('data', (x) => (out += x));
await sleep(6000);
const gap = Number(process.argv[2] ?? 2000);
for (let i = 0; i < 8; i++) {
  const tok = `tok${i}`;
  const t = Date.now();
  writeFileSync(join(A, 'f7'), `bench change ${tok}\n`.padEnd(2048, '.'));
  let ok = false;
  while (Date.now() - t < 8000) {
    try {
      if (readFileSync(join(S, 'f7'), 'utf8').startsWith(`bench change ${tok}`)) {
        ok = true;
        break;
      }
    } catch {
      /* not there yet */
    }
    await sleep(5);
  }
  console.log(i, ok ? Date.now() - t : 'LOST');
  await sleep(gap);
}
console.log(out);
d.kill('SIGINT');
await sleep(1500);
await v.stop();
await s.stop();
