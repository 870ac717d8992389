// The web UI under test: `lipsync run --web` (the real daemon) on a free port, and a real
// Chromium (driven by playwright-core) on a page of it; the new user's computer it runs on
// (its own HOME and ssh config); the wizard's server step. One place for both e2e files.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { freePort } from '../harness/sshd.js';
import { BIN, ROOT, makeCliEnv, requireBuild, waitFor, type CliEnv } from '../support/cli.js';

const CHROMIUM = '/usr/bin/chromium';
/** Where the e2e tests save their screenshots. */
const SHOTS = join(ROOT, 'test-results', 'screenshots');

/** The CLI build (required) and the renderer's (built here when missing); the screenshot folder. */
export function requireWebBuild(): void {
  requireBuild();
  if (!existsSync(join(ROOT, 'out', 'renderer', 'index.html'))) {
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', 'renderer/vite.config.ts'],
      { cwd: ROOT, encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`renderer build failed:\n${r.stdout}\n${r.stderr}`);
  }
  mkdirSync(SHOTS, { recursive: true });
}

/**
 * A new user's computer inside `base`: an empty HOME (base/home, where the wizard puts keys)
 * and an ssh config (base/ssh_config) that keeps known_hosts in base and offers only the keys
 * named explicitly (IdentitiesOnly with no IdentityFile). `before` goes first in the config
 * (Host blocks of its own); `extra` lines join the `Host *` block.
 */
export function newComputerEnv(
  base: string,
  opts: { before?: string; extra?: string[] } = {},
): CliEnv & { home: string } {
  const home = join(base, 'home');
  mkdirSync(home, { mode: 0o700 });
  const cfg = join(base, 'ssh_config');
  writeFileSync(
    cfg,
    [
      ...(opts.before === undefined ? [] : [opts.before, '']),
      'Host *',
      `  UserKnownHostsFile ${join(base, 'known_hosts')}`,
      '  GlobalKnownHostsFile /dev/null',
      '  IdentitiesOnly yes',
      ...(opts.extra ?? []),
      '',
    ].join('\n'),
  );
  return { ...makeCliEnv({ sshConfigFile: cfg, debounceMs: 100, extraEnv: { HOME: home } }), home };
}

/**
 * The wizard's first step on a server never seen: address 127.0.0.1, `port`, `user`; Test
 * connection; the host key's fingerprint (returned) trusted; verified; Continue. `shot` takes
 * a screenshot after the fields are filled in, at the host key and once verified.
 */
export async function wizardServerStep(
  page: Page,
  server: { port: number; user: string },
  shot: (step: 'server' | 'hostkey' | 'verified') => Promise<unknown>,
): Promise<string | null> {
  await page.getByRole('heading', { name: 'Welcome to lipsync' }).waitFor();
  await page.getByLabel('Server address').fill('127.0.0.1');
  await page.getByLabel('Port').fill(String(server.port));
  await page.getByLabel('User name').fill(server.user);
  await shot('server');
  await page.getByRole('button', { name: 'Test connection' }).click();
  const fp = page.getByTestId('fingerprint');
  await fp.waitFor({ timeout: 20_000 });
  const fingerprint = await fp.textContent();
  await shot('hostkey');
  await page.getByRole('button', { name: 'Trust this server' }).click();
  await page.getByText('Next, set up an SSH key').waitFor({ timeout: 20_000 });
  await shot('verified');
  await page.getByRole('button', { name: 'Continue' }).click();
  return fingerprint;
}

export interface WebUi {
  daemon: ChildProcess;
  /** The page's address, with the daemon's token. */
  url: string;
  browser: Browser;
  page: Page;
  /** What the daemon printed (and the page's errors), for failure messages. */
  output(): string;
  /** A full-page screenshot: SHOTS/<prefix><name>.png. */
  shot(name: string): Promise<Buffer>;
  /** Closes the browser, then stops the daemon (SIGINT, SIGKILL after 10 s). */
  stop(): Promise<void>;
}

/**
 * Starts `lipsync run --web` with `env`, waits for its token, and opens Chromium on a light
 * 1100×820 page; its screenshots are named `shotPrefix` + name.
 */
export async function startWebUi(env: CliEnv, shotPrefix = ''): Promise<WebUi> {
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
    shot: (name) => page.screenshot({ path: join(SHOTS, `${shotPrefix}${name}.png`), fullPage: true }),
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
