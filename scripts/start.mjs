#!/usr/bin/env node
// `npm start`: the desktop app when the Electron binary can be had (fetched on the
// first run, once), otherwise the same engine and UI headless: the demo pair with
// the web UI, whose address is printed. Both are built by `npm run build` first.
import { spawnSync, spawn } from 'node:child_process';
import { join } from 'node:path';

const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(`lipsync needs Node.js 22.12 or newer (package.json "engines"); this is ${process.version}.`);
  process.exit(1);
}

const root = new URL('..', import.meta.url).pathname;
const bin = (n) => join(root, 'node_modules', '.bin', n);
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit' }).status === 0;

function exec(cmd, args) {
  const child = spawn(cmd, args, { cwd: root, stdio: 'inherit' });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  child.on('exit', (code) => process.exit(code ?? 0));
}

if (process.env.LIPSYNC_HEADLESS !== '1') {
  console.log('lipsync: getting the Electron binary (downloaded once, on the first start)…');
  const got = spawnSync(process.execPath, [join(root, 'node_modules', 'electron', 'install.js')], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'pipe'],
    timeout: 300_000,
  });
  if (got.status === 0 && run(bin('electron-vite'), ['build'])) {
    exec(bin('electron-vite'), ['preview']);
  } else {
    console.log(
      'lipsync: the Electron binary could not be downloaded here (no network?), so the desktop app cannot start.\n' +
        'Starting the same engine and UI headless instead: a demo pair, with the web UI at the address printed below.',
    );
    exec(process.execPath, [join(root, 'bin', 'lipsync.js'), 'demo', '--web']);
  }
} else {
  exec(process.execPath, [join(root, 'bin', 'lipsync.js'), 'demo', '--web']);
}
