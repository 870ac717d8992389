// The setup wizard's key-only path end to end, in a real Chromium against `lipsync run
// --web` (the real engine) and the real test sshd with password logins off (the normal
// server): generate a key, the page shows its public key and the command for the server,
// the test appends that shown key to the sshd's authorized_keys (as the user would),
// "I've added it — check again" connects with exactly that key, then Folders (the local
// folder is checked there: an error first, gone once the folder exists), First sync (the
// server folder is new: no choice) and Done, and the first sync really copies the file.
// Screenshots of every step: test-results/screenshots/wizard-*.png.

import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { newComputerEnv, requireWebBuild, startWebUi, wizardServerStep, type WebUi } from './web-ui.js';
import { makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { waitFor, type CliEnv } from '../support/cli.js';

describe('setup wizard on a key-only server, in a real browser', () => {
  let server: SshServer;
  let base: string;
  let home: string;
  let env: CliEnv;
  let ui: WebUi | undefined;
  let page: Page;
  let url: string;
  let serverHome: string;
  const remoteName = `lipsync-keyonly-${randomBytes(3).toString('hex')}`;

  const shot = (name: string) => ui!.shot(name);

  beforeAll(async () => {
    requireWebBuild();

    // No password option: PasswordAuthentication no, keys from server.dir/authorized_keys only.
    server = await startSshd();
    serverHome = (await server.exec('printf %s "$HOME"')).stdout;
    expect(serverHome).toMatch(/^\//);

    base = await makeTempDir('lipsync-keyonly-e2e');
    // ssh state of this "computer" stays in the temp dir: known_hosts via the ssh config, keys via HOME.
    // IdentitiesOnly with no IdentityFile: only a key the wizard names explicitly can log in.
    const computer = newComputerEnv(base, { extra: ['  PasswordAuthentication no'] });
    env = computer;
    home = computer.home;

    ui = await startWebUi(env, 'wizard-');
    ({ url, page } = ui);
  }, 120_000);

  afterAll(async () => {
    await ui?.stop();
    await server?.stop();
    if (serverHome) rmSync(join(serverHome, remoteName), { recursive: true, force: true });
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('generate a key, add the shown public key on the server, check again, folders, first sync, done', async () => {
    try {
      await page.goto(url);

      // ---- Server: the host key is new (trusted in the page); no key logs in yet.
      const shots = { server: '1-server', hostkey: '2-hostkey', verified: '3-verified' };
      await wizardServerStep(page, server, (step) => shot(shots[step]));

      // ---- Key: generate; the page shows the public key and the command for the server.
      await page.getByText('You have no SSH keys yet.').waitFor({ timeout: 20_000 });
      await page.getByRole('button', { name: 'Generate a new ed25519 key' }).click();
      const shownKey = page.getByTestId('public-key');
      await shownKey.waitFor({ timeout: 20_000 });
      const publicKey = ((await shownKey.textContent()) ?? '').trim();
      const keyFile = join(home, '.ssh', 'id_ed25519_lipsync');
      expect(publicKey).toBe(readFileSync(`${keyFile}.pub`, 'utf8').trim());
      expect(publicKey).toMatch(/^ssh-ed25519 AAAA\S+ lipsync@127\.0\.0\.1$/);
      const command = (await page.getByTestId('install-command').textContent()) ?? '';
      expect(command).toContain(`echo '${publicKey}' >> ~/.ssh/authorized_keys`);
      expect(await page.getByTestId('ssh-copy-id').textContent()).toBe(
        `ssh-copy-id -i ${keyFile}.pub -p ${server.port} ${server.user}@127.0.0.1`,
      );
      await shot('4-key');

      // Not on the server yet: "check again" says so, and the wizard stays on this step.
      const checkAgain = page.getByRole('button', { name: 'I’ve added it — check again' });
      await checkAgain.click();
      await page.getByText('does not accept this key yet').waitFor({ timeout: 20_000 });
      await shot('5-key-not-added');

      // What the user does on the server: append the shown public key to authorized_keys.
      appendFileSync(join(server.dir, 'authorized_keys'), `${publicKey}\n`);
      await checkAgain.click();

      // ---- Folders: a new folder in the server home; the local folder is checked right here.
      await page.getByText('Folder on 127.0.0.1').waitFor({ timeout: 30_000 });
      await waitFor(async () => (await page.getByTestId('remote-path').textContent()) === serverHome, 15_000);
      await page.getByLabel('New folder inside (optional)').fill(remoteName);
      const local = join(base, 'Laptop Sync');
      await page.getByLabel('Local folder (absolute path)').fill(local);
      const alert = page.getByRole('alert').filter({ hasText: 'does not exist' });
      await alert.waitFor({ timeout: 15_000 });
      expect(await alert.textContent()).toContain('mkdir -p');
      expect(await page.getByRole('button', { name: 'Next' }).isDisabled()).toBe(true);
      await shot('6-folders-error');
      mkdirSync(local);
      writeFileSync(join(local, 'from-laptop.txt'), 'written before the first sync\n');
      await alert.getByRole('button', { name: 'Try again' }).click();
      await page.getByText(`✓ ${local}: 1 item in it.`).waitFor({ timeout: 15_000 });
      expect(await page.getByRole('alert').count()).toBe(0);
      await shot('7-folders');
      await page.getByRole('button', { name: 'Next' }).click();

      // ---- First sync: the server folder is new, so there is nothing to choose.
      const empty = page.getByTestId('first-sync-empty');
      await empty.waitFor({ timeout: 15_000 });
      await waitFor(
        async () => (await empty.textContent())?.includes('copies 1 file from this computer there') ?? false,
        30_000,
        () => 'the preview count',
      );
      expect(await page.getByRole('radio').count()).toBe(0);
      await shot('8-first-sync');
      await page.getByRole('button', { name: 'Finish' }).click();

      // ---- Done: and the first sync copies the file to the server, with the new key.
      await page.getByText(/is set up$/).waitFor({ timeout: 30_000 });
      const remoteFile = join(serverHome, remoteName, 'from-laptop.txt');
      await waitFor(
        () => existsSync(remoteFile),
        30_000,
        () => 'the first sync',
      );
      expect(readFileSync(remoteFile, 'utf8')).toBe('written before the first sync\n');
      await page.locator('article.pair-card').first().waitFor({ timeout: 15_000 });
      await shot('9-done');
      const pairs = JSON.parse(readFileSync(join(env.configDir, 'config.json'), 'utf8')) as {
        pairs: { identityFile?: string }[];
      };
      expect(pairs.pairs[0]?.identityFile).toBe(keyFile);
    } catch (e) {
      await shot('99-failure').catch(() => undefined);
      throw new Error(`${(e as Error).message}\ndaemon output:\n${ui!.output().slice(-4000)}`, { cause: e });
    }
  }, 300_000);
});
