#!/usr/bin/env node
// The one test command: typecheck and build every side, lint, then run every
// test (unit and integration, against real rsync, sshd and inotify).
// It ends with one line: "N passed, N failed[, N skipped]".
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;

function step(name, cmd, args) {
  console.log(`\n=== ${name}: ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  const ok = r.status === 0;
  console.log(`=== ${name}: ${ok ? 'ok' : 'FAILED'}`);
  return ok;
}

const bin = (n) => join(root, 'node_modules', '.bin', n);

// Typecheck + build count as one check each: a type error is a failed test.
if (step('typecheck and build', bin('tsc'), ['-b'])) passed++;
else failed++;
// The CLI as bin/lipsync.js runs it (the integration tests spawn it): bundled from the build above.
if (step('bundle the CLI', process.execPath, [join(root, 'scripts/bundle-cli.mjs')])) passed++;
else failed++;
// The native helper (out/native/malloc-trim.node): a test loads it, so a missing compiler fails here.
if (step('native helper', process.execPath, [join(root, 'scripts/build-native.mjs'), '--strict'])) passed++;
else failed++;
if (step('lint', bin('eslint'), ['.'])) passed++;
else failed++;

mkdirSync(join(root, 'test-results'), { recursive: true });
const report = join(root, 'test-results', 'vitest.json');
rmSync(report, { force: true });
const extra = process.argv.slice(2);
step('tests', bin('vitest'), ['run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`, ...extra]);
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  // A test file that failed to load has no tests counted: count it as a failure.
  for (const f of r.testResults ?? []) {
    if (f.status === 'failed' && (!f.assertionResults || f.assertionResults.length === 0)) failed++;
  }
} else {
  console.log('vitest wrote no report: counting the test run as failed');
  failed++;
}
console.log(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 ? 1 : 0);
