#!/usr/bin/env node
// Builds the engine's one native helper, out/native/malloc-trim.node (electron/native/malloc-trim.c),
// with the system C compiler ($CC, else cc, gcc or clang). lipsync runs without it (the idle daemon then keeps
// more memory after a big sync), so a missing compiler is a warning here, not a failed build;
// with --strict (the test command) it is an error.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const src = join(root, 'electron/native/malloc-trim.c');
const outDir = join(root, 'out/native');
const out = join(outDir, 'malloc-trim.node');
const strict = process.argv.includes('--strict');

function fail(why) {
  const text = `build-native: ${why}\n  lipsync works without out/native/malloc-trim.node; the idle daemon just keeps more memory after a big sync.`;
  if (strict) {
    console.error(text);
    process.exit(1);
  }
  console.warn(text);
  process.exit(0);
}

if (process.platform !== 'linux') fail(`not built on ${process.platform} (malloc_trim is glibc's, on Linux).`);
if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) process.exit(0);
mkdirSync(outDir, { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const compilers = process.env.CC ? [process.env.CC] : ['cc', 'gcc', 'clang'];
let r;
let cc;
for (cc of compilers) {
  r = spawnSync(cc, ['-shared', '-fPIC', '-O2', '-Wall', '-o', tmp, src], { encoding: 'utf8' });
  if (r.error?.code !== 'ENOENT') break;
}
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  if (r.error?.code === 'ENOENT') fail(`no C compiler: ${compilers.join(', ')} not found. Install one (Debian/Ubuntu: sudo apt install gcc) and run npm run build again.`);
  fail(`${cc} failed (${r.error?.message ?? `exit ${r.status}`}):\n${r.stderr}`);
}
renameSync(tmp, out);
console.log(`build-native: built ${out}`);
