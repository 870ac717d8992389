// Loads the test harness (test/harness/sshd.ts, TypeScript) without editing it:
// transpiles it with the project's own TypeScript compiler into out/bench/ and imports it.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';

export const ROOT = new URL('../..', import.meta.url).pathname.replace(/\/$/, '');

export async function loadHarness() {
  const src = join(ROOT, 'test/harness/sshd.ts');
  const outDir = join(ROOT, 'out/bench/harness');
  const out = join(outDir, 'sshd.mjs');
  if (!existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs) {
    const js = ts.transpileModule(readFileSync(src, 'utf8'), {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      fileName: src,
    }).outputText;
    mkdirSync(outDir, { recursive: true });
    writeFileSync(out, js);
  }
  return import(out);
}

/**
 * Builds what the daemon runs, as `npm run build` does: the engine (`tsc -b electron`), the CLI
 * bundle bin/lipsync.js runs (scripts/bundle-cli.mjs) and the native helper (scripts/build-native.mjs).
 * Returns {ok, output} of the first failing step.
 */
export function buildEngine() {
  for (const args of [
    [join(ROOT, 'node_modules/typescript/bin/tsc'), '-b', join(ROOT, 'electron')],
    [join(ROOT, 'scripts/bundle-cli.mjs')],
    [join(ROOT, 'scripts/build-native.mjs')],
  ]) {
    const r = spawnSync(process.execPath, args, { encoding: 'utf8' });
    if (r.status !== 0) return { ok: false, output: `${r.stdout}${r.stderr}` };
  }
  return { ok: true, output: '' };
}
