// The web UI under test: `lipsync run --web` (the real daemon) on a free port, and a real
// Chromium (driven by playwright-core) on a page of it. One place for both e2e files.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../harness/sshd.js';
import { BIN, waitFor, type CliEnv } from '../support/cli.js';

const CHROMIUM = '/usr/bin/chromium';

export interface WebUi {
  daemon: ChildProcess;
  /** The page's address, with the daemon's token. */
  url: string;
  browser: Browser;
  page: Page;
  /** What the daemon printed (and the page's errors), for failure messages. */
  output(): string;
  /** Closes the browser, then stops the daemon (SIGINT, SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/** Starts `lipsync run --web` with `env`, waits for its token, and opens Chromium on a light 1100×820 page. */
export async function startWebUi(env: CliEnv): Promise<WebUi> {
  let out = '';
  const port = await freePort();
  const daemon = spawn(process.execPath, [BIN, 'run', '--web', '--port', String(port)], {
    env: env.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  daemon.stdout!.on('data', (d) => (out += d));
  daemon.stderr!.on('data', (d) => (out += d));
  await waitFor(
    () => existsSync(join(env.dataDir, 'web-token')) || daemon.exitCode !== null,
    20_000,
    () => `the web daemon to start:\n${out}`,
  );
  if (daemon.exitCode !== null) throw new Error(`daemon exited:\n${out}`);
  const token = readFileSync(join(env.dataDir, 'web-token'), 'utf8').trim();
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1100, height: 820 }, colorScheme: 'light' });
  page.on('pageerror', (e) => (out += `\n[pageerror] ${e.message}`));
  return {
    daemon,
    url: `http://127.0.0.1:${port}/#token=${token}`,
    browser,
    page,
    output: () => out,
    async stop() {
      await browser.close().catch(() => undefined);
      if (daemon.exitCode !== null) return;
      const exited = new Promise((r) => daemon.once('close', r));
      daemon.kill('SIGINT');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (daemon.exitCode === null) daemon.kill('SIGKILL');
    },
  };
}
