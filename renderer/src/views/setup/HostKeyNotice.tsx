import type { HostKeyInfo } from '../../api.js';

/** A host key that is not trusted yet: the fingerprint to check and trust, or the hard stop of a changed one. */
export function HostKeyNotice({
  host,
  hostKey,
  trusting,
  onTrust,
}: {
  host: string;
  hostKey: HostKeyInfo;
  trusting: boolean;
  onTrust: () => void;
}) {
  if (hostKey.status === 'changed') {
    return (
      <div className="notice notice-error hard-stop" role="alert">
        <strong className="notice-title">Stop: this server&apos;s identity has changed</strong>
        <p>
          The server at {host} presented a different host key ({hostKey.type} {hostKey.fingerprint}) than the one this
          computer remembers. This happens when the server was reinstalled, but it is also exactly what an attacker
          intercepting the connection would look like.
        </p>
        <p>
          lipsync will not connect. Ask whoever runs the server whether its key changed. Only if it did, remove the old
          key (<code>ssh-keygen -R {host}</code>) and test again.
        </p>
      </div>
    );
  }
  return (
    <div className="notice notice-info" role="status">
      <strong className="notice-title">First connection to this server</strong>
      <p>Check that this fingerprint is your server&apos;s before you trust it:</p>
      <p className="fingerprint">
        <span className="muted">{hostKey.type}</span> <code data-testid="fingerprint">{hostKey.fingerprint}</code>
      </p>
      <p className="muted small">
        On the server,{' '}
        <code>ssh-keygen -lf /etc/ssh/ssh_host_{hostKey.type.replace(/^ssh-/, '').toLowerCase()}_key.pub</code> shows
        it.
      </p>
      <div className="actions">
        <button type="button" className="primary" onClick={onTrust} disabled={trusting}>
          {trusting ? 'Trusting…' : 'Trust this server'}
        </button>
      </div>
    </div>
  );
}
