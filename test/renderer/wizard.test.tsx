// @vitest-environment jsdom
import { cleanup, configure, fireEvent, render, screen, waitFor, within } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/src/App.js';
import { deferred, engineStatus, fakeBridge, pairSettings, pairStatus } from './fake-bridge.js';
import { FP, conn, newComputer, startWizard } from './wizard-fake.js';

afterEach(cleanup);
// Two shared cores: role queries on the whole app can take longer than the default second.
configure({ asyncUtilTimeout: 5000 });

describe('Setup wizard', () => {
  it('walks every step: test, trust, generate key, install with password, browse, local, initial sync, finish', async () => {
    let trusted = false;
    let installed = false;
    const install = deferred<unknown>();
    const tree: Record<string, string[]> = { '~': ['Docs', 'Music'], '/home/ann/Docs': ['Old'] };
    const b = newComputer({
      testConnection: () =>
        !trusted
          ? conn({
              hostKey: { type: 'ssh-ed25519', fingerprint: FP, status: 'unknown' },
              auth: 'not-tried',
              rsyncVersion: null,
            })
          : conn({ auth: installed ? 'ok' : 'needs-key' }),
      trustHostKey: () => {
        trusted = true;
        return { trusted: true };
      },
      listKeys: () => [],
      generateKey: () => ({
        path: '/home/ann/.ssh/id_ed25519',
        publicKey: 'ssh-ed25519 AAAAC3Nz lipsync@nas.local',
        type: 'ed25519',
        fingerprint: 'SHA256:key',
        comment: 'lipsync@nas.local',
      }),
      installKey: async () => {
        await install.promise;
        installed = true;
        return { installed: true };
      },
      browseRemote: (p) => {
        const path = p.path === '~' ? '/home/ann' : String(p.path);
        return { path, dirs: tree[p.path === '~' ? '~' : path] ?? [] };
      },
      add: (p) => pairSettings({ id: 'docs', local: String(p.local), remote: String(p.remote) }),
      checkLocalFolder: (p) => ({ path: String(p.path), entries: 5 }),
      previewInitialSync: async () => {
        await preview.promise;
        return { localOnly: 3, remoteOnly: 1, different: 2, same: 7, truncated: false };
      },
    });
    const preview = deferred<unknown>();
    // 1. Server: first-run wizard, unknown host key → fingerprint + trust.
    await startWizard(b);
    expect(await screen.findByTestId('fingerprint')).toHaveProperty('textContent', FP);
    expect(b.callsOf('testConnection')[0]).toEqual({ host: 'nas.local', port: 2222, user: 'ann' });
    fireEvent.click(screen.getByRole('button', { name: 'Trust this server' }));
    await waitFor(() =>
      expect(b.callsOf('trustHostKey')).toEqual([{ host: 'nas.local', port: 2222, fingerprint: FP }]),
    );
    expect(await screen.findByText(/Server identity verified/)).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Continue' }));

    // 2. Key: none yet → generate ed25519.
    expect(await screen.findByText('You have no SSH keys yet.')).toBeTruthy();
    expect(screen.getByRole('list', { name: 'Setup steps' }).querySelector('[aria-current="step"]')?.textContent).toBe(
      'SSH key',
    );
    fireEvent.click(screen.getByRole('button', { name: 'Generate a new ed25519 key' }));
    const radio = await screen.findByRole('radio', { name: /id_ed25519/ });
    expect(radio).toHaveProperty('checked', true);

    // 3. Install with a password: cleared from the field as soon as the call goes out, and after it.
    const pw = screen.getByLabelText('Server password') as HTMLInputElement;
    expect(pw.type).toBe('password');
    fireEvent.change(pw, { target: { value: 's3cret' } });
    fireEvent.click(screen.getByRole('button', { name: 'Install on server' }));
    await waitFor(() => expect(b.callsOf('installKey')).toHaveLength(1));
    expect(b.callsOf('installKey')[0]).toEqual({
      host: 'nas.local',
      port: 2222,
      user: 'ann',
      password: 's3cret',
      publicKeyPath: '/home/ann/.ssh/id_ed25519.pub',
    });
    expect(pw.value).toBe('');
    expect(screen.getByRole('button', { name: 'Installing…' })).toBeTruthy();
    install.resolve(undefined);

    // 4. Folders: browse the server by clicking through directories; type the local path.
    expect(await screen.findByRole('button', { name: 'Open folder Docs' })).toBeTruthy();
    expect(screen.queryByLabelText('Server password')).toBeNull();
    expect(document.body.innerHTML).not.toContain('s3cret');
    expect(screen.getByTestId('remote-path').textContent).toBe('/home/ann');
    fireEvent.click(screen.getByRole('button', { name: 'Open folder Docs' }));
    expect(await screen.findByRole('button', { name: 'Open folder Old' })).toBeTruthy();
    expect(screen.getByTestId('remote-path').textContent).toBe('/home/ann/Docs');
    expect(b.callsOf('browseRemote').at(-1)).toEqual({
      host: 'nas.local',
      port: 2222,
      user: 'ann',
      identityFile: '/home/ann/.ssh/id_ed25519',
      path: '/home/ann/Docs',
    });
    expect(b.callsOf('testConnection').at(-1)).toMatchObject({ identityFile: '/home/ann/.ssh/id_ed25519' });
    const next = screen.getByRole('button', { name: 'Next' });
    expect(next).toHaveProperty('disabled', true);
    fireEvent.change(screen.getByLabelText('Local folder (absolute path)'), { target: { value: '/home/me/Docs' } });
    expect(next).toHaveProperty('disabled', false);
    fireEvent.click(next);

    // 5. Initial sync: merge by default; take the server's copy mentions the trash. Both folders
    // are compared once they are chosen, and each choice says what it would replace.
    const merge = await screen.findByRole('radio', { name: /Merge both/ });
    expect(merge).toHaveProperty('checked', true);
    expect(screen.getByTestId('preview-summary').textContent).toBe('Comparing the two folders…');
    expect(screen.queryByTestId('preview-merge')).toBeNull();
    await waitFor(() =>
      expect(b.callsOf('previewInitialSync')).toEqual([
        {
          local: '/home/me/Docs',
          remote: 'ann@nas.local:2222:/home/ann/Docs',
          identityFile: '/home/ann/.ssh/id_ed25519',
        },
      ]),
    );
    preview.resolve(undefined);
    expect((await screen.findByTestId('preview-merge')).textContent).toBe('Nothing replaced, 2 conflict copies.');
    expect(screen.getByTestId('preview-take-server').textContent).toBe('2 local files replaced, kept in the trash.');
    expect(screen.getByTestId('preview-take-local').textContent).toBe(
      '2 files on the server replaced, kept in its trash.',
    );
    expect(screen.getByTestId('preview-summary').textContent).toMatch(
      /^3 files only here, 1 only on the server .*7 the same on both sides, 2 different\.$/,
    );
    const takeServer = screen.getByRole('radio', { name: /Take the server's copy/ });
    expect(takeServer.closest('label')?.textContent).toMatch(/trash/);
    fireEvent.click(takeServer);
    fireEvent.click(screen.getByRole('button', { name: 'Finish' }));
    await waitFor(() =>
      expect(b.callsOf('add')).toEqual([
        {
          local: '/home/me/Docs',
          remote: 'ann@nas.local:2222:/home/ann/Docs',
          direction: 'two-way',
          initialSync: 'take-server',
          identityFile: '/home/ann/.ssh/id_ed25519',
        },
      ]),
    );

    // 6. Done: the first sync's progress, from live status.
    expect(await screen.findByText('docs is set up')).toBeTruthy();
    b.pushState(
      engineStatus([
        pairStatus({ state: 'syncing', progress: { filesDone: 1, filesTotal: 4, bytesDone: 2048, rateBps: 1024 } }),
      ]),
    );
    expect(screen.getByRole('progressbar').getAttribute('aria-valuetext')).toBe('1 of 4 files');
    fireEvent.click(screen.getByRole('button', { name: 'Go to status' }));
    expect(await screen.findByRole('heading', { name: 'Status' })).toBeTruthy();
  });

  it('a changed host key is a hard stop: explanation, no trust button, no way on', async () => {
    const b = newComputer({
      testConnection: () =>
        conn({ hostKey: { type: 'ssh-ed25519', fingerprint: FP, status: 'changed' }, auth: 'not-tried' }),
    });
    await startWizard(b, 'evil.example', '22', 'ann');
    const stop = await screen.findByText(/identity has changed/);
    const box = stop.closest('[role="alert"]') as HTMLElement;
    expect(box.textContent).toContain('will not connect');
    expect(box.textContent).toContain('ssh-keygen -R evil.example');
    expect(screen.queryByRole('button', { name: /Trust/ })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Continue' })).toBeNull();
    expect(b.callsOf('trustHostKey')).toHaveLength(0);
  });

  it('an unreachable server shows the reason and fix; a known server with a working key skips the key step', async () => {
    let reachable = false;
    const b = newComputer({
      testConnection: () =>
        reachable
          ? conn({})
          : conn({
              reachable: false,
              hostKey: null,
              auth: 'not-tried',
              rsyncVersion: null,
              error: { kind: 'host-unreachable', message: 'Connection refused.', fix: 'Is sshd running on port 2222?' },
            }),
      browseRemote: () => ({ path: '/home/ann', dirs: [] }),
    });
    await startWizard(b);
    expect((await screen.findByRole('alert')).textContent).toContain('Is sshd running on port 2222?');
    expect(screen.queryByRole('button', { name: 'Continue' })).toBeNull();
    reachable = true;
    fireEvent.click(screen.getByRole('button', { name: 'Test connection' }));
    expect(await screen.findByText('You can already log in with an SSH key.')).toBeTruthy();
    fireEvent.click(screen.getByRole('button', { name: 'Continue' }));
    expect(await screen.findByText('No sub-folders here.')).toBeTruthy();
    expect(b.callsOf('listKeys')).toHaveLength(0);
  });

  it('a failed install shows the error and still clears the password', async () => {
    const b = newComputer({
      testConnection: () => conn({ auth: 'needs-key' }),
      listKeys: () => [
        {
          path: '/home/ann/.ssh/id_rsa',
          publicKey: 'ssh-rsa AAA',
          type: 'rsa',
          fingerprint: 'SHA256:r',
          comment: 'ann',
        },
      ],
      installKey: () => {
        throw { kind: 'auth-failed', message: 'Wrong password.', fix: 'Type the password of ann on the server.' };
      },
    });
    await startWizard(b);
    fireEvent.click(await screen.findByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('radio', { name: /id_rsa/ })).toHaveProperty('checked', true);
    const pw = screen.getByLabelText('Server password') as HTMLInputElement;
    fireEvent.change(pw, { target: { value: 'nope' } });
    fireEvent.click(screen.getByRole('button', { name: 'Install on server' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Type the password of ann on the server.');
    expect(pw.value).toBe('');
    expect(b.callsOf('installKey')[0]?.publicKeyPath).toBe('/home/ann/.ssh/id_rsa.pub');
  });

  it('"Add folder" with a known server skips the connection and key steps', async () => {
    const b = fakeBridge({
      status: () => engineStatus([pairStatus()]),
      list: () => [pairSettings({ remote: 'ann@nas:2222:/srv/docs', identityFile: '/home/ann/.ssh/id_ed25519' })],
      browseRemote: (p) =>
        p.path === '~' ? { path: '/srv', dirs: ['docs', 'music'] } : { path: String(p.path), dirs: [] },
      add: (p) => pairSettings({ id: 'music', local: String(p.local), remote: String(p.remote) }),
      checkLocalFolder: (p) => ({ path: String(p.path), entries: 2 }),
    });
    render(<App bridge={b} />);
    await screen.findByTestId('state-docs');
    fireEvent.click(screen.getAllByRole('button', { name: 'Add folder' })[0] as HTMLElement);
    expect(await screen.findByRole('heading', { name: 'Add a folder' })).toBeTruthy();
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    fireEvent.click(await screen.findByRole('button', { name: 'Open folder music' }));
    await waitFor(() => expect(screen.getByTestId('remote-path').textContent).toBe('/srv/music'));
    fireEvent.change(screen.getByLabelText('Local folder (absolute path)'), { target: { value: '/home/me/Music' } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    // No preview (the engine could not compare): the step says so and still finishes.
    // The summary first says "Comparing…" while the (failing) preview runs: wait for its outcome.
    await waitFor(() =>
      expect(screen.getByTestId('preview-summary').textContent).toMatch(/^Could not compare the two folders: /),
    );
    expect(screen.queryByTestId('preview-merge')).toBeNull();
    fireEvent.click(await screen.findByRole('button', { name: 'Finish' }));
    await waitFor(() => expect(b.callsOf('add')).toHaveLength(1));
    expect(b.callsOf('add')[0]).toEqual({
      local: '/home/me/Music',
      remote: 'ann@nas:2222:/srv/music',
      direction: 'two-way',
      initialSync: 'merge',
      identityFile: '/home/ann/.ssh/id_ed25519',
    });
    expect(b.callsOf('testConnection')).toHaveLength(0);
    expect(b.callsOf('installKey')).toHaveLength(0);
    // The confirmation renders once the add call has answered.
    expect(await within(document.body).findByText('music is set up')).toBeTruthy();
  });

  it('understands user@host:port typed into the address field, and shows its parts in their fields', async () => {
    const b = newComputer({
      testConnection: () => conn({ auth: 'needs-key' }),
      listKeys: () => [],
    });
    render(<App bridge={b} initialView="setup" />);
    const address = await screen.findByLabelText('Server address');
    fireEvent.change(address, { target: { value: 'ann@127.0.0.1:22960' } });
    fireEvent.blur(address);
    expect((screen.getByLabelText('Server address') as HTMLInputElement).value).toBe('127.0.0.1');
    expect((screen.getByLabelText('Port') as HTMLInputElement).value).toBe('22960');
    expect((screen.getByLabelText('User name') as HTMLInputElement).value).toBe('ann');
    fireEvent.click(screen.getByRole('button', { name: 'Test connection' }));
    await waitFor(() =>
      expect(b.callsOf('testConnection')[0]).toEqual({ host: '127.0.0.1', port: 22960, user: 'ann' }),
    );
  });
});
