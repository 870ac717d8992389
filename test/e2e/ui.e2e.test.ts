// The lipsync UI end to end in a real Chromium: `lipsync run --web` (the real daemon)
// against the real test sshd, driven with playwright-core. Nothing is faked: the setup
// wizard generates a key, installs it with a password typed in the page, browses the
// server, and the first sync, a conflict, excludes, pause/resume and Sync now all go
// through the real engine. A second pair (added with the CLI) shows a transfer in progress
// under a bandwidth limit, the Versions view, the mass-delete confirm and a pause for an hour.
// Screenshots of every screen: test-results/screenshots/.

import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { newComputerEnv, requireWebBuild, startWebUi, wizardServerStep, type WebUi } from './web-ui.js';
import { makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { cli, waitFor, type CliEnv } from '../support/cli.js';

const PW_USER = 'lipsync-ui-e2e';
const PASSWORD = `ui ${randomBytes(6).toString('hex')} 'q' $(x)`;

describe('lipsync UI in a real browser (lipsync run --web)', () => {
  let server: SshServer;
  let base: string;
  let env: CliEnv;
  let ui: WebUi | undefined;
  let page: Page;
  let url: string;
  let local: string;
  let remote: string;
  let uid: number;
  let gid: number;
  /** The second pair's folders (added with the CLI, the harness's key). */
  let local2 = '';
  let remote2 = '';

  const shot = (name: string) => ui!.shot(name);

  /** Write a file on the server side as the server user (so its rsync can replace it). */
  const remoteWrite = (rel: string, content: string) => {
    const p = join(remote, rel);
    writeFileSync(p, content);
    chownSync(p, uid, gid);
  };

  beforeAll(async () => {
    requireWebBuild();

    server = await startSshd({ password: { user: PW_USER, password: PASSWORD } });
    const pwUser = server.passwordUser;
    if (!pwUser) throw new Error('sshd harness did not create the password user');
    uid = Number(spawnSync('id', ['-u', PW_USER], { encoding: 'utf8' }).stdout.trim());
    gid = Number(spawnSync('id', ['-g', PW_USER], { encoding: 'utf8' }).stdout.trim());

    // The server folder (with one file) and the local folder (with one file).
    remote = join(pwUser.home, `ui-sync-${randomBytes(3).toString('hex')}`);
    rmSync(remote, { recursive: true, force: true });
    mkdirSync(remote);
    chownSync(remote, uid, gid);
    remoteWrite('from-server.txt', 'hello from the server\n');

    base = await makeTempDir('lipsync-ui-e2e');
    local = join(base, 'local');
    mkdirSync(local);
    writeFileSync(join(local, 'from-laptop.txt'), 'hello from the laptop\n');
    writeFileSync(join(local, 'debug.log'), 'noise\n');

    // The harness's own alias (its key, as this user) for the second pair, which the CLI adds;
    // only that Host block, so the wizard's connections to 127.0.0.1 stay as a new user's.
    const harnessCfg = readFileSync(server.sshConfigFile, 'utf8');
    const aliasBlock = harnessCfg.slice(0, harnessCfg.indexOf('\nHost 127.0.0.1'));
    if (!aliasBlock.startsWith(`Host ${server.alias}`))
      throw new Error(`unexpected harness ssh config:\n${harnessCfg}`);
    // ssh state of this "computer" stays in the temp dir: known_hosts via the ssh config, keys via HOME.
    env = newComputerEnv(base, { before: aliasBlock });

    ui = await startWebUi(env);
    ({ url, page } = ui);
  }, 120_000);

  afterAll(async () => {
    await ui?.stop();
    await server?.stop();
    if (remote) rmSync(remote, { recursive: true, force: true });
    if (remote2) rmSync(remote2, { recursive: true, force: true });
    if (base) rmSync(base, { recursive: true, force: true });
  }, 60_000);

  it('setup wizard, first sync, recent changes, conflict, excludes, pause/resume, Sync now', async () => {
    const failMsg = () => `daemon output:\n${ui!.output().slice(-4000)}`;
    try {
      await page.goto(url);

      // ---- Setup wizard: server → host key → key → install → folders → first sync.
      const shots = { server: '01-wizard-server', hostkey: '02-wizard-hostkey', verified: '03-wizard-verified' };
      const fp = await wizardServerStep(page, { port: server.port, user: PW_USER }, (step) => shot(shots[step]));
      const expectedFp = spawnSync('ssh-keygen', ['-l', '-f', join(server.dir, 'host_ed25519.pub')], {
        encoding: 'utf8',
      }).stdout.split(' ')[1];
      expect(fp).toBe(expectedFp);

      await page.getByRole('button', { name: 'Generate a new ed25519 key' }).click();
      const keyRadio = page.getByRole('radio', { name: /id_ed25519/ });
      await keyRadio.waitFor({ timeout: 20_000 });
      expect(await keyRadio.isChecked()).toBe(true);
      await page.getByLabel('Server password').fill(PASSWORD);
      await shot('04-wizard-key');
      await page.getByRole('button', { name: 'Install on server' }).click();

      await page.getByText(`Folder on 127.0.0.1`).waitFor({ timeout: 30_000 });
      expect(await page.content()).not.toContain(PASSWORD);
      const folderName = remote.split('/').pop() as string;
      await page.getByRole('button', { name: `Open folder ${folderName}` }).click();
      await waitFor(async () => (await page.getByTestId('remote-path').textContent()) === remote, 15_000);
      await page.getByLabel('Local folder (absolute path)').fill(local);
      await shot('05-wizard-folders');
      await page.getByRole('button', { name: 'Next' }).click();
      expect(await page.getByRole('radio', { name: /Merge both/ }).isChecked()).toBe(true);
      await shot('06-wizard-first-sync');
      await page.getByRole('button', { name: 'Finish' }).click();
      await page.getByText(/is set up$/).waitFor({ timeout: 30_000 });
      await shot('07-wizard-done');
      await page.getByRole('button', { name: 'Go to status' }).click();

      // ---- Status: the first sync brings both files to both sides.
      const card = page.locator('article.pair-card').first();
      const pairId = (await card.getAttribute('data-pair')) as string;
      const state = page.getByTestId(`state-${pairId}`);
      await waitFor(
        () => existsSync(join(local, 'from-server.txt')) && existsSync(join(remote, 'from-laptop.txt')),
        30_000,
        () => 'the first sync',
      );
      await waitFor(
        async () => (await state.textContent()) === 'Up to date',
        30_000,
        () => 'Up to date',
      );
      await shot('08-status');

      // ---- A new local file shows up in Recent changes (live).
      await page.getByRole('navigation').getByRole('button', { name: 'Recent changes' }).click();
      await page.getByRole('list', { name: 'Recent changes' }).waitFor({ timeout: 10_000 });
      writeFileSync(join(local, 'new-note.txt'), 'written while the UI watched\n');
      await page.getByText('new-note.txt').first().waitFor({ timeout: 30_000 });
      await waitFor(
        () => existsSync(join(remote, 'new-note.txt')),
        20_000,
        () => 'new-note.txt on the server',
      );
      await shot('09-recent');

      // ---- Pause, edit both sides, resume: a conflict, resolved in the UI.
      await page.getByRole('navigation').getByRole('button', { name: 'Status' }).click();
      await card.getByRole('button', { name: 'Pause' }).click();
      await card.getByRole('button', { name: 'Until resumed' }).click();
      await waitFor(
        async () => (await state.textContent())?.startsWith('Paused') ?? false,
        15_000,
        () => 'Paused',
      );
      await shot('10-status-paused');
      writeFileSync(join(local, 'new-note.txt'), 'the laptop version, longer than the other\n');
      remoteWrite('new-note.txt', 'the server version\n');
      await card.getByRole('button', { name: 'Resume' }).click();
      await waitFor(
        async () => /conflict/.test((await state.textContent()) ?? ''),
        45_000,
        () => `a conflict in the status (state: ${ui!.output().slice(-1500)})`,
      );
      expect(await page.getByText('Up to date').count()).toBe(0);
      await shot('11-status-conflict');
      await page
        .getByRole('navigation')
        .getByRole('button', { name: /Conflicts/ })
        .click();
      const row = page.locator('li.conflict-row', { hasText: 'new-note.txt' });
      await row.waitFor({ timeout: 15_000 });
      expect(await row.locator('table').textContent()).toMatch(/Local.*Remote/s);
      await shot('12-conflicts');
      await row.getByRole('checkbox').check();
      await page.getByRole('button', { name: 'Keep remote for selected' }).click();
      await page.getByText(/^No conflicts/).waitFor({ timeout: 30_000 });
      await waitFor(
        () => readFileSync(join(local, 'new-note.txt'), 'utf8') === 'the server version\n',
        30_000,
        () => 'the remote version locally',
      );
      await shot('13-conflicts-resolved');

      // ---- Folder settings: an exclude with its live preview, saved.
      await page.getByRole('navigation').getByRole('button', { name: 'Folder settings' }).click();
      await page.getByLabel('Excludes').fill('*.log');
      const preview = page.getByLabel('Exclude preview');
      await preview.getByText('debug.log').waitFor({ timeout: 15_000 });
      expect(await preview.textContent()).toContain('Excludes 1 existing file');
      await page.getByRole('button', { name: 'Save' }).click();
      await page.getByText('Saved.').waitFor({ timeout: 15_000 });
      await preview.getByText('debug.log').waitFor({ timeout: 15_000 });
      await shot('14-settings-excludes');

      // ---- Sync now. New excludes make the engine compare both sides in full: until that
      // ran the badge says so (pending -1), never "Up to date"; Sync now runs it.
      await page.getByRole('navigation').getByRole('button', { name: 'Status' }).click();
      await waitFor(
        async () => ['Up to date', 'Full compare pending'].includes((await state.textContent()) ?? ''),
        30_000,
        () => 'Up to date or Full compare pending',
      );
      await card.getByRole('button', { name: 'Sync now' }).click();
      await page.getByText(/^Last run:/).waitFor({ timeout: 30_000 });
      await card.getByRole('button', { name: 'Sync now' }).waitFor();
      await waitFor(
        async () => (await state.textContent()) === 'Up to date',
        30_000,
        () => 'Up to date after Sync now',
      );
      await shot('15-status-synced');

      // ---- Dark theme.
      const toggle = page.getByRole('button', { name: /Change theme/ });
      await toggle.click(); // light
      await toggle.click(); // dark
      await shot('16-status-dark');
    } catch (e) {
      await shot('99-failure').catch(() => undefined);
      throw new Error(`${(e as Error).message}\n${failMsg()}`, { cause: e });
    }
  }, 300_000);

  it('a transfer with bytes and time left, Versions, the mass-delete confirm, a pause for an hour', async () => {
    const failMsg = () => `daemon output:\n${ui!.output().slice(-4000)}`;
    try {
      // ---- A second pair, added with the CLI (through the running daemon), 150 KiB/s at most.
      local2 = join(base, 'media');
      mkdirSync(local2);
      remote2 = await makeTempDir('lipsync-ui-e2e-media');
      const docs = Array.from({ length: 10 }, (_, i) => `doc-${String(i + 1).padStart(2, '0')}.txt`);
      for (const d of docs) writeFileSync(join(local2, d), `${d}\n`);
      writeFileSync(join(local2, 'notes.txt'), 'first version of the notes\n');
      const added = await cli(env, ['add', local2, `${server.alias}:${remote2}`, '--id', 'media', '--bwlimit', '150']);
      expect(added.code, `lipsync add: ${added.stdout}\n${added.stderr}`).toBe(0);

      await page.goto(url);
      const card = page.locator('article.pair-card[data-pair="media"]');
      const state = page.getByTestId('state-media');
      await card.waitFor({ timeout: 20_000 });
      await waitFor(
        async () => (await state.textContent()) === 'Up to date' && existsSync(join(remote2, 'notes.txt')),
        60_000,
        () => `media's first sync (state ${ui!.output().slice(-1500)})`,
      );

      // ---- A 3 MiB file at 150 KiB/s: ~20 s of transfer, with bytes of the total and time left.
      writeFileSync(join(local2, 'video.bin'), randomBytes(3 * 1024 * 1024));
      const bar = card.getByRole('progressbar');
      const eta = card.getByTestId('progress-eta');
      await eta.waitFor({ timeout: 30_000 });
      expect(await state.textContent()).toBe('Syncing…');
      const bytes = (await card.getByTestId('progress-bytes').textContent()) ?? '';
      expect(bytes).toMatch(/^[\d.]+ (B|KiB|MiB) of 3\.0 MiB$/);
      expect(await eta.textContent()).toMatch(/^(\d+ s|\d+ min( \d+ s)?) left$/);
      expect(await bar.getAttribute('aria-valuetext')).toBe('0 of 1 files');
      expect(await card.textContent()).toContain('video.bin');
      expect(await card.textContent()).not.toContain('Up to date');
      await shot('20-status-transfer');
      await waitFor(
        async () => (await state.textContent()) === 'Up to date' && existsSync(join(remote2, 'video.bin')),
        90_000,
        () => 'video.bin on the server',
      );
      expect(readFileSync(join(remote2, 'video.bin'))).toEqual(readFileSync(join(local2, 'video.bin')));

      // ---- Versions: the server's notes.txt, replaced by an edit here, is kept in its trash.
      writeFileSync(join(local2, 'notes.txt'), 'second version of the notes, a little longer\n');
      await waitFor(
        () => readFileSync(join(remote2, 'notes.txt'), 'utf8').startsWith('second version'),
        30_000,
        () => 'the edited notes.txt on the server',
      );
      await page.getByRole('navigation').getByRole('button', { name: 'Versions' }).click();
      await page.locator('#versions-pair').selectOption('media');
      const kept = page.getByRole('table', { name: 'Kept versions' });
      const noteRow = kept.locator('tr', { hasText: 'notes.txt' });
      // Each search lists both trashes (the server's over ssh): let one finish before asking again.
      const deadline = Date.now() + 90_000;
      for (;;) {
        await page.getByRole('button', { name: 'Search' }).click();
        await page.getByText('Loading versions…').waitFor({ state: 'detached', timeout: 60_000 });
        if ((await noteRow.count()) > 0) break;
        if (Date.now() > deadline) throw new Error('notes.txt never showed in Versions');
        await new Promise((r) => setTimeout(r, 1000));
      }
      expect(await noteRow.first().textContent()).toContain('in media');
      expect(await noteRow.first().textContent()).toContain('the server');
      expect(await noteRow.first().textContent()).toContain('27 B'); // "first version of the notes\n"
      // Restore, and Restore next to it.
      const restores = noteRow.first().getByRole('button', { name: /^Restore notes\.txt from / });
      expect(await restores.count()).toBe(2);
      expect(await restores.nth(1).getAttribute('aria-label')).toMatch(/ next to it$/);
      await shot('21-versions');

      // ---- Mass delete: 8 of the 12 files deleted here → paused, asking; nothing deleted yet.
      await page.getByRole('navigation').getByRole('button', { name: 'Status' }).click();
      for (const d of docs.slice(0, 8)) unlinkSync(join(local2, d));
      await waitFor(
        async () => (await state.textContent()) === 'Waiting for your confirmation',
        45_000,
        () => `the mass-delete pause (${ui!.output().slice(-1500)})`,
      );
      const ask = card.getByRole('alert');
      // All 8 in one cycle as a rule; the watcher may split them, so the numbers may differ a little.
      expect(await ask.textContent()).toMatch(/This sync would delete [3-8] of 1[0-2] files/);
      expect(await ask.textContent()).toContain('nothing is deleted until you confirm');
      expect(await card.getByRole('button', { name: 'Resume' }).count()).toBe(0);
      expect(docs.slice(8).every((d) => existsSync(join(remote2, d)))).toBe(true);
      expect(docs.slice(0, 8).filter((d) => existsSync(join(remote2, d))).length).toBeGreaterThanOrEqual(3);
      await shot('22-status-mass-delete');
      await ask.getByRole('button', { name: 'Confirm deletions' }).click();
      await waitFor(
        () => docs.slice(0, 8).every((d) => !existsSync(join(remote2, d))),
        45_000,
        () => 'the confirmed deletions on the server',
      );
      expect(docs.slice(8).every((d) => existsSync(join(remote2, d)))).toBe(true);
      await waitFor(
        async () => (await state.textContent()) === 'Up to date',
        30_000,
        () => 'Up to date after the confirm',
      );

      // ---- Pause for an hour: neutral, with its end time; Sync now is off; Resume undoes it.
      const before = Date.now();
      await card.getByRole('button', { name: 'Pause' }).click();
      await card.getByRole('button', { name: '1 hour' }).click();
      await waitFor(
        async () => (await state.textContent())?.startsWith('Paused until ') ?? false,
        15_000,
        () => 'Paused until …',
      );
      // toLocaleTimeString of now + 1 h, as the page formats it (same machine, same zone).
      const until = (await state.textContent())!.slice('Paused until '.length);
      expect(until).toMatch(/^\d{1,2}:\d{2}:\d{2}( [AP]M)?$/);
      const shown = await page.evaluate(
        ([a, b]) => [new Date(a!).toLocaleTimeString(), new Date(b!).toLocaleTimeString()],
        [before + 60 * 60_000 - 1000, Date.now() + 60 * 60_000 + 1000],
      );
      const hhmm = (t: string) => t.replace(/:\d{2}(?= [AP]M$|$)/, ''); // drop the seconds
      expect(shown.map(hhmm)).toContain(hhmm(until));
      expect(await card.locator('.badge').getAttribute('class')).toContain('badge-muted');
      expect(await card.getByText('Problem').count()).toBe(0);
      expect(await card.getByText('Syncing…').count()).toBe(0);
      expect(await card.getByRole('button', { name: 'Sync now' }).isDisabled()).toBe(true);
      expect(await card.getByRole('button', { name: 'Resume' }).count()).toBe(1);
      await shot('23-status-paused-1h');
      await card.getByRole('button', { name: 'Resume' }).click();
      await waitFor(
        async () => !((await state.textContent()) ?? '').startsWith('Paused'),
        15_000,
        () => 'resumed',
      );
    } catch (e) {
      await shot('98-failure-media').catch(() => undefined);
      throw new Error(`${(e as Error).message}\n${failMsg()}`, { cause: e });
    }
  }, 300_000);
});
