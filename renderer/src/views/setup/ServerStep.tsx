import { useId, useState, type FormEvent } from 'react';
import type { TestConnectionResult } from '../../api.js';
import { ErrorBox } from '../../components.js';
import { useApi } from '../../context.js';
import { splitServerAddress } from '../../../../shared/server-address.js';
import { HostKeyNotice } from './HostKeyNotice.js';
import { rsyncMissing } from './keys.js';
import { targetParams, type KnownServer, type ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/**
 * Step 1: the server's address, a connection test (with the key chosen earlier, if any),
 * its host key trusted, and rsync there. Continue only when all of that holds.
 */
export function ServerStep({
  initial,
  identityFile,
  known,
  onPickKnown,
  onConnected,
}: {
  initial: ServerTarget | null;
  identityFile: string | undefined;
  known: KnownServer[];
  onPickKnown: (s: KnownServer) => void;
  onConnected: (s: ServerTarget, loggedIn: boolean) => void;
}) {
  const api = useApi();
  const ids = useId();
  const [host, setHost] = useState(initial?.host ?? '');
  const [port, setPort] = useState(String(initial?.port ?? 22));
  const [user, setUser] = useState(initial?.user ?? '');
  const test = useCall((s: ServerTarget) => api.call('testConnection', targetParams(s, identityFile)));
  const trust = useCall(async (s: ServerTarget, fingerprint: string) => {
    await api.call('trustHostKey', { host: s.host, port: s.port, fingerprint });
    return test.run(s);
  });

  // `user@host:port` typed into the address field is understood (its parts win over the other fields).
  const typed = splitServerAddress(host);
  const portN = typed?.port ?? Number(port);
  const portValid = Number.isInteger(portN) && portN >= 1 && portN <= 65535;
  const server: ServerTarget = { host: typed?.host ?? host.trim(), port: portN, user: typed?.user ?? user.trim() };

  const edit = (set: (v: string) => void) => (v: string) => {
    set(v);
    test.reset();
    trust.reset();
  };
  const onTest = (e: FormEvent) => {
    e.preventDefault();
    if (!server.host || !portValid) return;
    trust.reset();
    void test.run(server);
  };

  const r: TestConnectionResult | null = test.result;
  const hostKey = r?.hostKey ?? null;
  const verified = !!r && r.reachable && hostKey?.status === 'known';
  const noRsync = verified && r.auth === 'ok' && !r.rsyncVersion;

  return (
    <div className="card">
      {known.length > 0 ? (
        <div className="known">
          <h3>Use a server you already sync with</h3>
          <ul className="plain">
            {known.map((s) => (
              <li key={`${s.user}@${s.host}:${s.port}`}>
                <button type="button" onClick={() => onPickKnown(s)}>
                  {s.user ? `${s.user}@` : ''}
                  {s.host}
                  {s.port !== 22 ? `:${s.port}` : ''}
                </button>
              </li>
            ))}
          </ul>
          <h3>Or connect to another server</h3>
        </div>
      ) : (
        <h3>Your server</h3>
      )}
      <form onSubmit={onTest} aria-label="Server">
        <div className="field-row">
          <div className="field grow">
            <label htmlFor={`${ids}-host`}>Server address</label>
            <input
              id={`${ids}-host`}
              value={host}
              placeholder="example.com or 192.168.1.10"
              autoComplete="off"
              spellCheck={false}
              required
              onChange={(e) => edit(setHost)(e.target.value)}
              onBlur={() => {
                // Show the parts of `user@host:port` in their own fields.
                if (!typed || (typed.user === undefined && typed.port === undefined)) return;
                setHost(typed.host);
                if (typed.user !== undefined) setUser(typed.user);
                if (typed.port !== undefined) setPort(String(typed.port));
              }}
            />
          </div>
          <div className="field small-field">
            <label htmlFor={`${ids}-port`}>Port</label>
            <input
              id={`${ids}-port`}
              value={port}
              inputMode="numeric"
              aria-invalid={!portValid}
              onChange={(e) => edit(setPort)(e.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${ids}-user`}>User name</label>
            <input
              id={`${ids}-user`}
              value={user}
              autoComplete="username"
              spellCheck={false}
              onChange={(e) => edit(setUser)(e.target.value)}
            />
          </div>
        </div>
        {!portValid ? <p className="field-error">The port is a number from 1 to 65535 (usually 22).</p> : null}
        <div className="actions">
          <button type="submit" className="primary" disabled={test.busy || !server.host || !portValid}>
            {test.busy ? 'Testing…' : 'Test connection'}
          </button>
        </div>
      </form>
      {test.error ? <ErrorBox error={test.error} title="Connection test failed" /> : null}
      {trust.error ? <ErrorBox error={trust.error} title="Not trusted" /> : null}
      {r && !r.reachable ? (
        <ErrorBox
          title="Cannot reach the server"
          error={
            r.error ?? {
              kind: 'host-unreachable',
              message: `Nothing answered on ${server.host} port ${server.port}.`,
              fix: 'Check the address and port, and that the server is on.',
            }
          }
        />
      ) : null}
      {r && r.reachable && hostKey && hostKey.status !== 'known' ? (
        <HostKeyNotice
          host={server.host}
          hostKey={hostKey}
          trusting={trust.busy}
          onTrust={() => void trust.run(server, hostKey.fingerprint)}
        />
      ) : null}
      {verified && noRsync ? (
        <ErrorBox
          title={`Connected to ${server.host}, but it cannot sync yet`}
          error={rsyncMissing(server.host)}
          onRetry={() => void test.run(server)}
        />
      ) : null}
      {verified && !noRsync ? (
        <div className="notice notice-ok" role="status">
          <p>
            Connected to {server.host}. Server identity verified ({hostKey.type} <code>{hostKey.fingerprint}</code>
            ).
          </p>
          <p>
            {r.auth === 'ok'
              ? 'You can already log in with an SSH key.'
              : 'Next, set up an SSH key so lipsync can log in without a password.'}
          </p>
          {r.rsyncVersion ? <p className="muted small">rsync {r.rsyncVersion} on the server.</p> : null}
          {r.error && r.auth !== 'ok' && r.auth !== 'needs-key' ? <ErrorBox error={r.error} /> : null}
          <div className="actions">
            <button type="button" className="primary" onClick={() => onConnected(server, r.auth === 'ok')}>
              Continue
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}
