// @vitest-environment jsdom
// The setup wizard's issue-16 behaviours, one per test: a key-only server (public key,
// command, "check again" with exactly that key), any key file, rsync missing at step 1,
// the local folder checked on the Folders step, the first-sync choice skipped when a side
// is empty, and the folder picker only where the bridge has one.
import { cleanup, configure, fireEvent, render, screen, waitFor } from '@testing-library/react';
import { afterEach, describe, expect, it } from 'vitest';
import { App } from '../../renderer/src/App.js';
import type { SshKeyInfo } from '../../renderer/src/api.js';
import { authorizedKeysCommand, sshCopyIdCommand } from '../../renderer/src/views/setup/keys.js';
import { engineStatus, pairSettings, type FakeBridge } from './fake-bridge.js';
import { conn, newComputer, startWizard } from './wizard-fake.js';

afterEach(cleanup);
configure({ asyncUtilTimeout: 5000 });

const NEW_KEY: SshKeyInfo = {
  path: '/home/ann/.ssh/id_ed25519_lipsync',
  publicKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBlipsync lipsync@nas.local',
  type: 'ED25519',
  fingerprint: 'SHA256:newkey',
  comment: 'lipsync@nas.local',
};

/** A server that accepts exactly the keys in `authorized` (by private key path). */
function keyOnlyServer(authorized: Set<string>, extra: Record<string, (p: Record<string, unknown>) => unknown> = {}) {
  return newComputer({
    testConnection: (p) => conn({ auth: authorized.has(String(p.identityFile)) ? 'ok' : 'needs-key' }),
    listKeys: () => [],
    generateKey: () => NEW_KEY,
    browseRemote: () => ({ path: '/home/ann', dirs: ['Sync'] }),
    checkLocalFolder: (p) => ({ path: String(p.path), entries: 1 }),
    previewInitialSync: () => ({ localOnly: 1, remoteOnly: 1, different: 1, same: 0, truncated: false }),
    add: (p) => pairSettings({ id: 'sync', local: String(p.local), remote: String(p.remote) }),
    ...extra,
  });
}

async function toKeyStep(b: FakeBridge) {
  await startWizard(b);
  fireEvent.click(await screen.findByRole('button', { name: 'Continue' }));
  await screen.findByText('You have no SSH keys yet.');
}

describe('Setup wizard: key-only servers', () => {
  it('shows the new public key and the exact command; "check again" tests that key and goes on', async () => {
    const authorized = new Set<string>();
    const b = keyOnlyServer(authorized);
    await toKeyStep(b);
    fireEvent.click(screen.getByRole('button', { name: 'Generate a new ed25519 key' }));

    expect((await screen.findByTestId('public-key')).textContent).toBe(NEW_KEY.publicKey);
    const cmd = screen.getByTestId('install-command').textContent ?? '';
    expect(cmd).toBe(authorizedKeysCommand(NEW_KEY));
    expect(cmd).toContain(`echo '${NEW_KEY.publicKey}' >> ~/.ssh/authorized_keys`);
    expect(screen.getByTestId('ssh-copy-id').textContent).toBe(
      'ssh-copy-id -i /home/ann/.ssh/id_ed25519_lipsync.pub -p 2222 ann@nas.local',
    );
    expect(screen.getByRole('button', { name: 'Copy public key' })).toBeTruthy();
    expect(screen.getByRole('button', { name: 'Copy command for the server' })).toBeTruthy();

    // Not added yet: the server refuses, the wizard says what to do (and stays).
    fireEvent.click(screen.getByRole('button', { name: 'I’ve added it — check again' }));
    expect((await screen.findByRole('alert')).textContent).toContain('does not accept this key yet');
    expect(b.callsOf('testConnection').at(-1)).toEqual({
      host: 'nas.local',
      port: 2222,
      user: 'ann',
      identityFile: NEW_KEY.path,
    });

    // The user appends it on the server; check again: connected with that key, on to Folders.
    authorized.add(NEW_KEY.path);
    fireEvent.click(screen.getByRole('button', { name: 'I’ve added it — check again' }));
    expect(await screen.findByRole('button', { name: 'Open folder Sync' })).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
    expect(b.callsOf('installKey')).toHaveLength(0);
    expect(b.callsOf('browseRemote').at(-1)).toMatchObject({ identityFile: NEW_KEY.path });
  });

  it('Back to the server step tests with the key chosen before (no dead end)', async () => {
    const authorized = new Set<string>([NEW_KEY.path]);
    const b = keyOnlyServer(authorized, { listKeys: () => [NEW_KEY] });
    await startWizard(b);
    fireEvent.click(await screen.findByRole('button', { name: 'Continue' }));
    fireEvent.click(await screen.findByRole('button', { name: 'I’ve added it — check again' }));
    await screen.findByRole('button', { name: 'Open folder Sync' });
    fireEvent.click(screen.getByRole('button', { name: 'Back' }));
    fireEvent.click(await screen.findByRole('button', { name: 'Test connection' }));
    expect(await screen.findByText('You can already log in with an SSH key.')).toBeTruthy();
    expect(b.callsOf('testConnection').at(-1)).toMatchObject({ identityFile: NEW_KEY.path });
  });

  it('after a reload the key step preselects the key lipsync made, not just the first one', async () => {
    const rsa: SshKeyInfo = { ...NEW_KEY, path: '/home/ann/.ssh/id_rsa', publicKey: 'ssh-rsa AAAAB3 ann' };
    const b = keyOnlyServer(new Set(), { listKeys: () => [rsa, NEW_KEY] });
    await startWizard(b);
    fireEvent.click(await screen.findByRole('button', { name: 'Continue' }));
    expect(await screen.findByRole('radio', { name: /id_ed25519_lipsync/ })).toHaveProperty('checked', true);
    expect(screen.getByTestId('public-key').textContent).toBe(NEW_KEY.publicKey);
  });

  it('uses any key file: a bad path says what to do, the error goes when the path changes, a good one is selected', async () => {
    const other: SshKeyInfo = { ...NEW_KEY, path: '/mnt/usb/work_key', publicKey: 'ssh-rsa AAAAB3 work' };
    const b = keyOnlyServer(new Set(), {
      readKey: (p) => {
        if (p.path !== '/mnt/usb/work_key') {
          throw {
            kind: 'invalid-settings',
            message: `"${String(p.path)}" is not a full path of a key file.`,
            fix: 'Give the full path.',
          };
        }
        return other;
      },
    });
    await toKeyStep(b);
    const field = screen.getByLabelText('Another key file');
    fireEvent.change(field, { target: { value: 'work_key' } });
    fireEvent.click(screen.getByRole('button', { name: 'Use this key' }));
    expect((await screen.findByRole('alert')).textContent).toContain('Give the full path.');
    fireEvent.change(field, { target: { value: '/mnt/usb/work_key' } });
    expect(screen.queryByRole('alert')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Use this key' }));
    expect(await screen.findByRole('radio', { name: /work_key/ })).toHaveProperty('checked', true);
    expect(screen.getByTestId('public-key').textContent).toBe('ssh-rsa AAAAB3 work');
    fireEvent.click(screen.getByRole('button', { name: 'I’ve added it — check again' }));
    await waitFor(() =>
      expect(b.callsOf('testConnection').at(-1)).toMatchObject({ identityFile: '/mnt/usb/work_key' }),
    );
  });
});

describe('Setup wizard: checks where they belong', () => {
  it('a server without rsync stops step 1: the reason and fix, no Continue, until rsync is there', async () => {
    let rsync: string | null = null;
    const b = newComputer({
      testConnection: () => conn({ rsyncVersion: rsync }),
    });
    await startWizard(b);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('rsync is not installed on nas.local');
    expect(alert.textContent).toContain('sudo apt install rsync');
    expect(screen.queryByRole('button', { name: 'Continue' })).toBeNull();
    expect(screen.queryByText(/Server identity verified/)).toBeNull();
    rsync = '3.2.7';
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    expect(await screen.findByRole('button', { name: 'Continue' })).toBeTruthy();
    expect(screen.queryByRole('alert')).toBeNull();
  });

  it('checks the local folder on the Folders step; the error goes once the folder is fixed', async () => {
    let exists = false;
    const b = keyOnlyServer(new Set(['k']), {
      list: () => [pairSettings({ remote: 'ann@nas:2222:/srv/docs', identityFile: 'k' })],
      status: () => engineStatus([]),
      checkLocalFolder: (p) => {
        if (!exists) {
          throw {
            kind: 'local-missing',
            message: `The local folder ${String(p.path)} does not exist.`,
            fix: 'Create it first (mkdir -p), or check the path.',
          };
        }
        return { path: String(p.path), entries: 3 };
      },
    });
    render(<App bridge={b} initialView="setup" />);
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    await screen.findByRole('button', { name: 'Open folder Sync' });
    fireEvent.change(screen.getByLabelText('Local folder (absolute path)'), { target: { value: '/home/me/Sync' } });
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('/home/me/Sync does not exist');
    expect(alert.textContent).toContain('mkdir -p');
    expect(screen.getByRole('button', { name: 'Next' })).toHaveProperty('disabled', true);
    expect(b.callsOf('checkLocalFolder')).toEqual([{ path: '/home/me/Sync' }]);

    exists = true; // the user made the folder
    fireEvent.click(screen.getByRole('button', { name: 'Try again' }));
    await waitFor(() => expect(screen.getByTestId('local-check').textContent).toBe('✓ /home/me/Sync: 3 items in it.'));
    expect(screen.queryByRole('alert')).toBeNull();
    expect(screen.getByRole('button', { name: 'Next' })).toHaveProperty('disabled', false);
    expect(b.callsOf('add')).toHaveLength(0);
  });

  it('a stale local error also goes when another path is typed', async () => {
    const b = keyOnlyServer(new Set(['k']), {
      list: () => [pairSettings({ remote: 'ann@nas:2222:/srv/docs', identityFile: 'k' })],
      checkLocalFolder: (p) => {
        if (p.path === 'Sync') throw { kind: 'invalid-settings', message: '"Sync" is not a full path.' };
        return { path: String(p.path), entries: 0 };
      },
    });
    render(<App bridge={b} initialView="setup" />);
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    const field = await screen.findByLabelText('Local folder (absolute path)');
    fireEvent.change(field, { target: { value: 'Sync' } });
    expect((await screen.findByRole('alert')).textContent).toContain('not a full path');
    fireEvent.change(field, { target: { value: '/home/me/Sync' } });
    expect(screen.queryByRole('alert')).toBeNull();
    await waitFor(() => expect(screen.getByTestId('local-check').textContent).toBe('✓ /home/me/Sync: empty.'));
  });
});

describe('Setup wizard: first sync and folder picker', () => {
  async function toFirstSync(b: FakeBridge, local = '/home/me/Sync') {
    render(<App bridge={b} initialView="setup" />);
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    await screen.findByRole('button', { name: 'Open folder Sync' });
    fireEvent.change(screen.getByLabelText('Local folder (absolute path)'), { target: { value: local } });
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    await screen.findByRole('heading', { name: 'First sync' });
  }
  const known = () => [pairSettings({ remote: 'ann@nas:2222:/srv/docs', identityFile: 'k' })];

  it('skips the choice when this computer’s folder is empty, and finishes with merge', async () => {
    const b = keyOnlyServer(new Set(['k']), {
      list: known,
      checkLocalFolder: (p) => ({ path: String(p.path), entries: 0 }),
      previewInitialSync: () => ({ localOnly: 0, remoteOnly: 4, different: 0, same: 0, truncated: false }),
    });
    await toFirstSync(b);
    await waitFor(() =>
      expect(screen.getByTestId('first-sync-empty').textContent).toBe(
        'The folder on this computer is empty: the first sync copies 4 files from the server here. Nothing to choose.',
      ),
    );
    expect(screen.queryByRole('radio')).toBeNull();
    fireEvent.click(screen.getByRole('button', { name: 'Finish' }));
    await waitFor(() => expect(b.callsOf('add')[0]).toMatchObject({ initialSync: 'merge', local: '/home/me/Sync' }));
  });

  it('skips the choice when the server folder turns out empty; asks it when both sides hold files', async () => {
    let remoteFiles = 0;
    const b = keyOnlyServer(new Set(['k']), {
      list: known,
      previewInitialSync: () => ({
        localOnly: 2,
        remoteOnly: remoteFiles,
        different: remoteFiles ? 1 : 0,
        same: 0,
        truncated: false,
      }),
    });
    await toFirstSync(b);
    expect((await screen.findByTestId('first-sync-empty')).textContent).toContain(
      'The folder on the server is empty: the first sync copies 2 files from this computer there.',
    );
    cleanup();
    remoteFiles = 3;
    await toFirstSync(b);
    expect((await screen.findByTestId('preview-merge')).textContent).toBe('Nothing replaced, 1 conflict copy.');
    expect(screen.queryByTestId('first-sync-empty')).toBeNull();
  });

  it('offers "Choose…" only when the bridge has a folder picker, and checks the chosen folder', async () => {
    const b = keyOnlyServer(new Set(['k']), { list: known });
    b.canPickFolder = true;
    b.pickFolder = async () => '/home/me/Picked';
    render(<App bridge={b} initialView="setup" />);
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    fireEvent.click(await screen.findByRole('button', { name: 'Choose…' }));
    await waitFor(() =>
      expect((screen.getByLabelText('Local folder (absolute path)') as HTMLInputElement).value).toBe('/home/me/Picked'),
    );
    await waitFor(() => expect(b.callsOf('checkLocalFolder')).toEqual([{ path: '/home/me/Picked' }]));
    cleanup();

    const web = keyOnlyServer(new Set(['k']), { list: known });
    render(<App bridge={web} initialView="setup" />);
    fireEvent.click(await screen.findByRole('button', { name: 'ann@nas:2222' }));
    await screen.findByLabelText('Local folder (absolute path)');
    expect(screen.queryByRole('button', { name: 'Choose…' })).toBeNull();
  });

  it('ssh-copy-id leaves out the default port and quotes what needs it', () => {
    const k = { ...NEW_KEY, path: '/home/ann/my keys/id' };
    expect(sshCopyIdCommand(k, { host: 'nas', port: 22, user: '' })).toBe(
      "ssh-copy-id -i '/home/ann/my keys/id.pub' nas",
    );
    expect(authorizedKeysCommand({ ...k, publicKey: "ssh-ed25519 AAAA it's me" })).toContain(
      "echo 'ssh-ed25519 AAAA it'\\''s me' >> ~/.ssh/authorized_keys",
    );
  });
});
