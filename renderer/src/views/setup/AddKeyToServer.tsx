import { useId, useState, type FormEvent } from 'react';
import type { ErrorInfo } from '../../../../shared/errors.js';
import type { SshKeyInfo } from '../../api.js';
import { ErrorBox } from '../../components.js';
import { useApi } from '../../context.js';
import { CopyBlock } from './CopyBlock.js';
import { authorizedKeysCommand, privateKeyPathOf, publicKeyPathOf, rsyncMissing, sshCopyIdCommand } from './keys.js';
import { targetParams, type ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/**
 * The selected key onto the server: its public line and the exact command (key-only
 * servers: appended to authorized_keys by hand), "I've added it — check again" (a
 * connection test with exactly this key), or, where the server takes a password, installed
 * with the password typed once.
 */
export function AddKeyToServer({
  server,
  sshKey,
  onReady,
}: {
  server: ServerTarget;
  sshKey: SshKeyInfo;
  onReady: (identityFile: string) => void;
}) {
  const api = useApi();
  const ids = useId();
  const identityFile = privateKeyPathOf(sshKey);
  const [password, setPassword] = useState('');
  const [refused, setRefused] = useState<ErrorInfo | null>(null);
  const check = useCall(() => api.call('testConnection', targetParams(server, identityFile)));
  const install = useCall((pw: string) =>
    api.call('installKey', {
      host: server.host,
      port: server.port,
      user: server.user,
      password: pw,
      publicKeyPath: publicKeyPathOf(sshKey),
    }),
  );

  /** Logs in with this key; on success the wizard goes on, else it says why. */
  const verify = async (installed: boolean) => {
    setRefused(null);
    const r = await check.run();
    if (!r) return;
    if (r.auth === 'ok' && r.rsyncVersion) return onReady(identityFile);
    setRefused(
      r.auth === 'ok'
        ? rsyncMissing(server.host)
        : r.auth === 'needs-key'
          ? {
              kind: 'auth-failed',
              message: installed
                ? 'The key was installed, but logging in with it still fails.'
                : `${server.host} does not accept this key yet.`,
              fix: installed
                ? 'Check that the server allows key logins (PubkeyAuthentication yes) and that ~/.ssh on the server is not writable by others.'
                : `Add the public key above to ~/.ssh/authorized_keys of ${server.user || 'your account'} on the server (the command below does it), then check again.`,
            }
          : (r.error ?? { kind: 'unknown', message: 'The connection test failed.' }),
    );
  };

  const onInstall = async (e: FormEvent) => {
    e.preventDefault();
    if (!password) return;
    const pw = password;
    // The password lives only in this call: cleared from state before the request even returns.
    setPassword('');
    setRefused(null);
    const ok = await install.run(pw);
    if (ok) await verify(true);
  };

  return (
    <div className="install">
      <h3>Put the key on the server</h3>
      <p>
        {server.host} lets lipsync in once this public key is in <code>~/.ssh/authorized_keys</code> of{' '}
        <strong>{server.user || 'your account'}</strong> there.
      </p>
      <CopyBlock text={sshKey.publicKey} label="public key" testId="public-key" />
      <p>On the server (for example in its web console, or logged in another way), run:</p>
      <CopyBlock text={authorizedKeysCommand(sshKey)} label="command for the server" testId="install-command" />
      <p className="muted small">
        Or, if the server still accepts your password, from this computer:{' '}
        <code data-testid="ssh-copy-id">{sshCopyIdCommand(sshKey, server)}</code>
      </p>
      {refused ? <ErrorBox error={refused} title="Not connected yet" /> : null}
      {check.error ? <ErrorBox error={check.error} title="Connection test failed" /> : null}
      <div className="actions">
        <button type="button" className="primary" onClick={() => void verify(false)} disabled={check.busy}>
          {check.busy ? 'Checking…' : 'I’ve added it — check again'}
        </button>
      </div>
      <form onSubmit={(e) => void onInstall(e)} aria-label="Install key on server" className="install">
        <h3>Or install it with your password</h3>
        <p>
          Only if {server.host} allows password logins: type the password of{' '}
          <strong>{server.user || 'your account'}</strong> once. It is used only to install the key and is never saved.
        </p>
        <div className="field">
          <label htmlFor={`${ids}-pw`}>Server password</label>
          <input
            id={`${ids}-pw`}
            type="password"
            autoComplete="off"
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </div>
        {install.error ? <ErrorBox error={install.error} title="Key not installed" /> : null}
        <div className="actions">
          <button type="submit" disabled={install.busy || !password}>
            {install.busy ? 'Installing…' : 'Install on server'}
          </button>
        </div>
      </form>
    </div>
  );
}
