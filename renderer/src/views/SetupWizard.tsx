import { useCallback, useEffect, useId, useState, type FormEvent } from 'react';
import type { ErrorInfo } from '../../../shared/errors.js';
import type { PairSettings } from '../../../shared/settings.js';
import type { PairStatus } from '../../../shared/status.js';
import {
  toErrorInfo,
  type InitialSyncMode,
  type PreviewInitialSyncResult,
  type SshKeyInfo,
  type TestConnectionResult,
} from '../api.js';
import { Empty, ErrorBox, Loading } from '../components.js';
import { useApi } from '../context.js';
import { splitServerAddress } from '../../../shared/server-address.js';
import { joinPath, parentPath, parseRemoteSpec, remoteSpec } from '../format.js';
import { PairCard } from './StatusView.js';

type Step = 'server' | 'key' | 'folders' | 'initial' | 'done';
const STEPS: { id: Step; label: string }[] = [
  { id: 'server', label: 'Server' },
  { id: 'key', label: 'SSH key' },
  { id: 'folders', label: 'Folders' },
  { id: 'initial', label: 'First sync' },
  { id: 'done', label: 'Done' },
];

interface KnownServer {
  host: string;
  port: number;
  user: string;
  identityFile?: string;
}

/** Where a key's public half lives: `publicKey` when it is a path, else `<path>.pub`. */
export function publicKeyPathOf(k: SshKeyInfo): string {
  if (k.publicKey.startsWith('/') && !k.publicKey.includes(' ')) return k.publicKey;
  return k.path.endsWith('.pub') ? k.path : `${k.path}.pub`;
}
function privateKeyPathOf(k: SshKeyInfo): string {
  return k.path.endsWith('.pub') ? k.path.slice(0, -4) : k.path;
}

export function SetupWizard({
  pairs,
  firstRun,
  onClose,
}: {
  pairs: PairStatus[];
  firstRun: boolean;
  onClose?: () => void;
}) {
  const api = useApi();
  const ids = useId();
  const [step, setStep] = useState<Step>('server');
  // Server
  const [host, setHost] = useState('');
  const [port, setPort] = useState('22');
  const [user, setUser] = useState('');
  const [testing, setTesting] = useState(false);
  const [test, setTest] = useState<TestConnectionResult | null>(null);
  const [testError, setTestError] = useState<ErrorInfo | null>(null);
  const [trusting, setTrusting] = useState(false);
  const [known, setKnown] = useState<KnownServer[]>([]);
  // Key
  const [keys, setKeys] = useState<SshKeyInfo[] | null>(null);
  const [keysError, setKeysError] = useState<ErrorInfo | null>(null);
  const [keyPath, setKeyPath] = useState<string>('');
  const [generating, setGenerating] = useState(false);
  const [password, setPassword] = useState('');
  const [installing, setInstalling] = useState(false);
  const [installError, setInstallError] = useState<ErrorInfo | null>(null);
  const [identityFile, setIdentityFile] = useState<string | undefined>(undefined);
  // Folders
  const [browsePath, setBrowsePath] = useState<string | null>(null);
  const [dirs, setDirs] = useState<string[] | null>(null);
  const [browseError, setBrowseError] = useState<ErrorInfo | null>(null);
  const [newFolder, setNewFolder] = useState('');
  const [local, setLocal] = useState('');
  // Initial sync
  const [initial, setInitial] = useState<InitialSyncMode>('merge');
  const [preview, setPreview] = useState<PreviewInitialSyncResult | null>(null);
  const [previewError, setPreviewError] = useState<ErrorInfo | null>(null);
  const [adding, setAdding] = useState(false);
  const [addError, setAddError] = useState<ErrorInfo | null>(null);
  const [added, setAdded] = useState<PairSettings | null>(null);

  // `user@host:port` typed into the address field is understood (its parts win over the other fields).
  const typed = splitServerAddress(host);
  const portN = typed?.port ?? Number(port);
  const portValid = Number.isInteger(portN) && portN >= 1 && portN <= 65535;
  const server = { host: typed?.host ?? host.trim(), port: portN, user: typed?.user ?? user.trim() };

  // Servers already used by other pairs: "Add folder" with one of them skips the connection and key steps.
  useEffect(() => {
    let live = true;
    api.call('list', {}).then(
      (l) => {
        if (!live) return;
        const seen = new Map<string, KnownServer>();
        for (const p of l) {
          const r = parseRemoteSpec(p.remote);
          if (!r) continue;
          const s: KnownServer = { host: r.host, port: r.port ?? 22, user: r.user ?? '' };
          if (p.identityFile) s.identityFile = p.identityFile;
          seen.set(`${s.user}@${s.host}:${s.port}`, s);
        }
        setKnown([...seen.values()]);
      },
      () => {
        /* no known servers: the full wizard still works */
      },
    );
    return () => {
      live = false;
    };
  }, [api]);

  const runTest = useCallback(
    async (key: string | undefined = identityFile) => {
      setTesting(true);
      setTestError(null);
      try {
        const r = await api.call('testConnection', {
          host: server.host,
          port: server.port,
          ...(server.user ? { user: server.user } : {}),
          ...(key ? { identityFile: key } : {}),
        });
        setTest(r);
        return r;
      } catch (e) {
        setTest(null);
        setTestError(toErrorInfo(e));
        return null;
      } finally {
        setTesting(false);
      }
    },
    [api, server.host, server.port, server.user, identityFile],
  );

  const onTest = (e: FormEvent) => {
    e.preventDefault();
    if (!server.host || !portValid) return;
    void runTest();
  };

  const trust = async () => {
    if (!test?.hostKey) return;
    setTrusting(true);
    setTestError(null);
    try {
      await api.call('trustHostKey', { host: server.host, port: server.port, fingerprint: test.hostKey.fingerprint });
      await runTest();
    } catch (e) {
      setTestError(toErrorInfo(e));
    } finally {
      setTrusting(false);
    }
  };

  const pickKnown = (s: KnownServer) => {
    setHost(s.host);
    setPort(String(s.port));
    setUser(s.user);
    setIdentityFile(s.identityFile);
    setStep('folders');
  };

  // Key step: load the keys on entry.
  useEffect(() => {
    if (step !== 'key' || keys) return;
    let live = true;
    api.call('listKeys', {}).then(
      (ks) => {
        if (!live) return;
        setKeys(ks);
        setKeysError(null);
        if (ks[0]) setKeyPath((p) => p || ks[0]!.path);
      },
      (e: unknown) => live && setKeysError(toErrorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [api, step, keys]);

  const generate = async () => {
    setGenerating(true);
    setKeysError(null);
    try {
      const k = await api.call('generateKey', { comment: `lipsync@${server.host}` });
      setKeys((prev) => [...(prev ?? []).filter((x) => x.path !== k.path), k]);
      setKeyPath(k.path);
    } catch (e) {
      setKeysError(toErrorInfo(e));
    } finally {
      setGenerating(false);
    }
  };

  const selectedKey = keys?.find((k) => k.path === keyPath) ?? null;

  const install = async (e: FormEvent) => {
    e.preventDefault();
    if (!selectedKey || !password) return;
    setInstalling(true);
    setInstallError(null);
    const pw = password;
    // The password lives only in this call: cleared from state before the request even returns.
    setPassword('');
    try {
      await api.call('installKey', {
        host: server.host,
        port: server.port,
        user: server.user,
        password: pw,
        publicKeyPath: publicKeyPathOf(selectedKey),
      });
      const key = privateKeyPathOf(selectedKey);
      setIdentityFile(key);
      const r = await runTest(key);
      if (r && r.auth === 'ok') setStep('folders');
      else if (r)
        setInstallError({
          kind: 'auth-failed',
          message: 'The key was installed, but logging in with it still fails.',
          fix: 'Check that the server allows key logins (PubkeyAuthentication yes) and that ~/.ssh on the server is not writable by others.',
        });
    } catch (err) {
      setInstallError(toErrorInfo(err));
    } finally {
      setPassword('');
      setInstalling(false);
    }
  };

  // Folders step: browse the server.
  const browse = useCallback(
    async (path: string) => {
      setBrowseError(null);
      setDirs(null);
      try {
        const r = await api.call('browseRemote', {
          host: server.host,
          port: server.port,
          ...(server.user ? { user: server.user } : {}),
          ...(identityFile ? { identityFile } : {}),
          path,
        });
        setBrowsePath(r.path);
        setDirs(r.dirs);
      } catch (e) {
        setBrowseError(toErrorInfo(e));
        setDirs([]);
      }
    },
    [api, server.host, server.port, server.user, identityFile],
  );

  useEffect(() => {
    if (step === 'folders' && browsePath === null && dirs === null) void browse('~');
  }, [step, browsePath, dirs, browse]);

  const newFolderName = newFolder.trim();
  const newFolderValid = newFolderName === '' || /^[^/\0]+$/.test(newFolderName);
  const remotePath = browsePath ? (newFolderName ? joinPath(browsePath, newFolderName) : browsePath) : null;
  const localValid = local.trim().startsWith('/');

  // First sync step: what each choice would do, from a comparison of both folders (sizes and times).
  const previewLocal = step === 'initial' ? local.trim() : '';
  const previewRemote =
    step === 'initial' && remotePath ? remoteSpec(server.user, server.host, server.port, remotePath) : '';
  useEffect(() => {
    if (!previewLocal || !previewRemote) return;
    let live = true;
    setPreview(null);
    setPreviewError(null);
    api
      .call('previewInitialSync', {
        local: previewLocal,
        remote: previewRemote,
        ...(identityFile ? { identityFile } : {}),
      })
      .then(
        (r) => live && setPreview(r),
        (e: unknown) => live && setPreviewError(toErrorInfo(e)),
      );
    return () => {
      live = false;
    };
  }, [api, previewLocal, previewRemote, identityFile]);

  const finish = async () => {
    if (!remotePath) return;
    setAdding(true);
    setAddError(null);
    try {
      const p = await api.call('add', {
        local: local.trim(),
        remote: remoteSpec(server.user, server.host, server.port, remotePath),
        direction: 'two-way',
        initialSync: initial,
        ...(identityFile ? { identityFile } : {}),
        ...(newFolderName ? { createRemote: true } : {}),
      });
      setAdded(p);
      setStep('done');
    } catch (e) {
      setAddError(toErrorInfo(e));
    } finally {
      setAdding(false);
    }
  };

  const hostKey = test?.hostKey ?? null;
  const changed = hostKey?.status === 'changed';
  const canContinueFromServer = !!test && test.reachable && !!hostKey && hostKey.status === 'known';
  const stepIndex = STEPS.findIndex((s) => s.id === step);
  const newPair = added ? pairs.find((p) => p.id === added.id) : undefined;

  return (
    <section aria-labelledby={`${ids}-title`} className="wizard">
      <div className="view-head">
        <h2 id={`${ids}-title`}>{firstRun ? 'Welcome to lipsync' : 'Add a folder'}</h2>
        {onClose && step !== 'done' ? (
          <button type="button" onClick={onClose}>
            Cancel
          </button>
        ) : null}
      </div>
      {firstRun && step === 'server' ? (
        <p className="lead">Keep a folder on this computer and a folder on your server in sync, both ways, over SSH.</p>
      ) : null}
      <ol className="steps" aria-label="Setup steps">
        {STEPS.map((s, i) => (
          <li
            key={s.id}
            className={i < stepIndex ? 'done' : i === stepIndex ? 'current' : ''}
            aria-current={i === stepIndex ? 'step' : undefined}
          >
            {s.label}
          </li>
        ))}
      </ol>

      {step === 'server' ? (
        <div className="card">
          {known.length > 0 ? (
            <div className="known">
              <h3>Use a server you already sync with</h3>
              <ul className="plain">
                {known.map((s) => (
                  <li key={`${s.user}@${s.host}:${s.port}`}>
                    <button type="button" onClick={() => pickKnown(s)}>
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
                  onChange={(e) => {
                    setHost(e.target.value);
                    setTest(null);
                  }}
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
                  onChange={(e) => {
                    setPort(e.target.value);
                    setTest(null);
                  }}
                />
              </div>
              <div className="field">
                <label htmlFor={`${ids}-user`}>User name</label>
                <input
                  id={`${ids}-user`}
                  value={user}
                  autoComplete="username"
                  spellCheck={false}
                  onChange={(e) => {
                    setUser(e.target.value);
                    setTest(null);
                  }}
                />
              </div>
            </div>
            {!portValid ? <p className="field-error">The port is a number from 1 to 65535 (usually 22).</p> : null}
            <div className="actions">
              <button type="submit" className="primary" disabled={testing || !server.host || !portValid}>
                {testing ? 'Testing…' : 'Test connection'}
              </button>
            </div>
          </form>
          {testError ? <ErrorBox error={testError} title="Connection test failed" /> : null}
          {test && !test.reachable ? (
            <ErrorBox
              title="Cannot reach the server"
              error={
                test.error ?? {
                  kind: 'host-unreachable',
                  message: `Nothing answered on ${server.host} port ${server.port}.`,
                  fix: 'Check the address and port, and that the server is on.',
                }
              }
            />
          ) : null}
          {test && hostKey && changed ? (
            <div className="notice notice-error hard-stop" role="alert">
              <strong className="notice-title">Stop: this server&apos;s identity has changed</strong>
              <p>
                The server at {server.host} presented a different host key ({hostKey.type} {hostKey.fingerprint}) than
                the one this computer remembers. This happens when the server was reinstalled, but it is also exactly
                what an attacker intercepting the connection would look like.
              </p>
              <p>
                lipsync will not connect. Ask whoever runs the server whether its key changed. Only if it did, remove
                the old key (<code>ssh-keygen -R {server.host}</code>) and test again.
              </p>
            </div>
          ) : null}
          {test && test.reachable && hostKey && hostKey.status === 'unknown' ? (
            <div className="notice notice-info" role="status">
              <strong className="notice-title">First connection to this server</strong>
              <p>Check that this fingerprint is your server&apos;s before you trust it:</p>
              <p className="fingerprint">
                <span className="muted">{hostKey.type}</span>{' '}
                <code data-testid="fingerprint">{hostKey.fingerprint}</code>
              </p>
              <p className="muted small">
                On the server,{' '}
                <code>ssh-keygen -lf /etc/ssh/ssh_host_{hostKey.type.replace(/^ssh-/, '').toLowerCase()}_key.pub</code>{' '}
                shows it.
              </p>
              <div className="actions">
                <button type="button" className="primary" onClick={trust} disabled={trusting}>
                  {trusting ? 'Trusting…' : 'Trust this server'}
                </button>
              </div>
            </div>
          ) : null}
          {canContinueFromServer ? (
            <div className="notice notice-ok" role="status">
              <p>
                Connected to {server.host}. Server identity verified ({hostKey.type} <code>{hostKey.fingerprint}</code>
                ).
              </p>
              <p>
                {test.auth === 'ok'
                  ? 'You can already log in with an SSH key.'
                  : 'Next, set up an SSH key so lipsync can log in without a password.'}
              </p>
              {test.rsyncVersion ? (
                <p className="muted small">rsync {test.rsyncVersion} on the server.</p>
              ) : test.auth === 'ok' ? (
                <p className="notice-warn">
                  rsync was not found on the server. Install it there (for example <code>apt install rsync</code>).
                </p>
              ) : null}
              {test.error && test.auth !== 'ok' && test.auth !== 'needs-key' ? <ErrorBox error={test.error} /> : null}
              <div className="actions">
                <button
                  type="button"
                  className="primary"
                  onClick={() => setStep(test.auth === 'ok' ? 'folders' : 'key')}
                >
                  Continue
                </button>
              </div>
            </div>
          ) : null}
        </div>
      ) : null}

      {step === 'key' ? (
        <div className="card">
          <h3>SSH key</h3>
          <p>
            lipsync logs in to {server.host} with an SSH key. Pick one of your keys, or generate a new one (ed25519).
          </p>
          {keysError ? <ErrorBox error={keysError} title="SSH keys" /> : null}
          {keys === null && !keysError ? (
            <Loading what="your SSH keys" />
          ) : keys && keys.length === 0 ? (
            <Empty>
              <p>You have no SSH keys yet.</p>
            </Empty>
          ) : keys ? (
            <fieldset>
              <legend>Your keys</legend>
              {keys.map((k) => (
                <label key={k.path} className="radio-card">
                  <input
                    type="radio"
                    name={`${ids}-key`}
                    value={k.path}
                    checked={keyPath === k.path}
                    onChange={() => setKeyPath(k.path)}
                  />
                  <span>
                    <code>{k.path}</code>
                    <br />
                    <span className="muted small">
                      {k.type} {k.fingerprint} {k.comment}
                    </span>
                  </span>
                </label>
              ))}
            </fieldset>
          ) : null}
          <div className="actions">
            <button type="button" onClick={generate} disabled={generating}>
              {generating ? 'Generating…' : 'Generate a new ed25519 key'}
            </button>
          </div>
          {selectedKey ? (
            <form onSubmit={install} aria-label="Install key on server" className="install">
              <h3>Install the key on the server</h3>
              <p>
                Type the password of <strong>{server.user || 'your account'}</strong> on {server.host} once. It is used
                only to install the key and is never saved.
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
              {installError ? <ErrorBox error={installError} title="Key not installed" /> : null}
              <div className="actions">
                <button type="submit" className="primary" disabled={installing || !password}>
                  {installing ? 'Installing…' : 'Install on server'}
                </button>
                <button type="button" onClick={() => setStep('server')}>
                  Back
                </button>
              </div>
            </form>
          ) : null}
        </div>
      ) : null}

      {step === 'folders' ? (
        <div className="card">
          <h3>Folder on {server.host}</h3>
          <div className="browser" aria-label="Server folders">
            <p className="browse-path">
              <span className="muted">Selected: </span>
              <code data-testid="remote-path">{remotePath ?? '…'}</code>
            </p>
            {browseError ? <ErrorBox error={browseError} title="Cannot list this folder" /> : null}
            {dirs === null ? (
              <Loading what="server folders" />
            ) : (
              <ul className="dir-list" aria-label="Folders">
                {browsePath && browsePath !== '/' ? (
                  <li>
                    <button type="button" onClick={() => void browse(parentPath(browsePath))}>
                      ↑ Up to {parentPath(browsePath)}
                    </button>
                  </li>
                ) : null}
                {dirs.map((d) => (
                  <li key={d}>
                    <button
                      type="button"
                      onClick={() => void browse(browsePath ? joinPath(browsePath, d) : d)}
                      aria-label={`Open folder ${d}`}
                    >
                      📁 {d}
                    </button>
                  </li>
                ))}
                {dirs.length === 0 && !browseError ? <li className="muted">No sub-folders here.</li> : null}
              </ul>
            )}
            <div className="field">
              <label htmlFor={`${ids}-newdir`}>New folder inside (optional)</label>
              <input
                id={`${ids}-newdir`}
                value={newFolder}
                spellCheck={false}
                aria-invalid={!newFolderValid}
                onChange={(e) => setNewFolder(e.target.value)}
              />
              {!newFolderValid ? <p className="field-error">A folder name cannot contain “/”.</p> : null}
            </div>
          </div>
          <h3>Folder on this computer</h3>
          <div className="field">
            <label htmlFor={`${ids}-local`}>Local folder (absolute path)</label>
            <input
              id={`${ids}-local`}
              value={local}
              placeholder="/home/you/Sync"
              spellCheck={false}
              aria-invalid={local !== '' && !localValid}
              aria-describedby={`${ids}-local-hint`}
              onChange={(e) => setLocal(e.target.value)}
            />
            <p className="hint" id={`${ids}-local-hint`}>
              The full path of an existing folder, starting with /.
            </p>
          </div>
          <div className="actions">
            <button
              type="button"
              className="primary"
              disabled={!remotePath || !localValid || !newFolderValid}
              onClick={() => setStep('initial')}
            >
              Next
            </button>
            <button type="button" onClick={() => setStep('server')}>
              Back
            </button>
          </div>
        </div>
      ) : null}

      {step === 'initial' ? (
        <div className="card">
          <h3>First sync</h3>
          <p>
            <code>{local.trim()}</code> ⇄{' '}
            <code>{remoteSpec(server.user, server.host, server.port, remotePath ?? '')}</code>
          </p>
          <fieldset>
            <legend>When both folders already have files</legend>
            <label className="radio-card">
              <input
                type="radio"
                name={`${ids}-initial`}
                checked={initial === 'merge'}
                onChange={() => setInitial('merge')}
              />
              <span>
                <strong>Merge both (recommended)</strong>
                <br />
                <span className="muted small">
                  Files from both sides end up in both places. A file that differs keeps both versions.
                </span>
                {preview ? (
                  <span className="preview-count small" data-testid="preview-merge">
                    <br />
                    Nothing replaced, {plural(preview.different, 'conflict copy', 'conflict copies')}.
                  </span>
                ) : null}
              </span>
            </label>
            <label className="radio-card">
              <input
                type="radio"
                name={`${ids}-initial`}
                checked={initial === 'take-server'}
                onChange={() => setInitial('take-server')}
              />
              <span>
                <strong>Take the server&apos;s copy</strong>
                <br />
                <span className="muted small">
                  This computer&apos;s folder becomes like the server&apos;s. Replaced local files go to the trash, not
                  deleted.
                </span>
                {preview ? (
                  <span className="preview-count small" data-testid="preview-take-server">
                    <br />
                    {plural(preview.different, 'local file')} replaced, kept in the trash.
                  </span>
                ) : null}
              </span>
            </label>
            <label className="radio-card">
              <input
                type="radio"
                name={`${ids}-initial`}
                checked={initial === 'take-local'}
                onChange={() => setInitial('take-local')}
              />
              <span>
                <strong>Take the local copy</strong>
                <br />
                <span className="muted small">
                  The server&apos;s folder becomes like this computer&apos;s. Replaced server files go to the trash, not
                  deleted.
                </span>
                {preview ? (
                  <span className="preview-count small" data-testid="preview-take-local">
                    <br />
                    {plural(preview.different, 'file')} on the server replaced, kept in its trash.
                  </span>
                ) : null}
              </span>
            </label>
          </fieldset>
          <p className="muted small" role="status" data-testid="preview-summary">
            {preview
              ? `${plural(preview.localOnly, 'file')} only here, ${preview.remoteOnly} only on the server (copied both ways in every case); ${preview.same} the same on both sides, ${preview.different} different.${preview.truncated ? ' (Stopped counting early: there may be more.)' : ''}`
              : previewError
                ? `Could not compare the two folders: ${previewError.message}`
                : 'Comparing the two folders…'}
          </p>
          {addError ? <ErrorBox error={addError} title="Could not add the folder" /> : null}
          <div className="actions">
            <button type="button" className="primary" onClick={finish} disabled={adding}>
              {adding ? 'Setting up…' : 'Finish'}
            </button>
            <button type="button" onClick={() => setStep('folders')} disabled={adding}>
              Back
            </button>
          </div>
        </div>
      ) : null}

      {step === 'done' && added ? (
        <div className="card">
          <h3>{added.id} is set up</h3>
          <p>The first sync runs now. You can close this; syncing continues in the background.</p>
          {newPair ? <PairCard pair={newPair} /> : <Loading what="the first sync" />}
          <div className="actions">
            {onClose ? (
              <button type="button" className="primary" onClick={onClose}>
                Go to status
              </button>
            ) : null}
          </div>
        </div>
      ) : null}
    </section>
  );
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}
