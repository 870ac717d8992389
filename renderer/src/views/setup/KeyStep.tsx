import { useEffect, useId, useState, type FormEvent } from 'react';
import type { SshKeyInfo } from '../../api.js';
import { Empty, ErrorBox, Loading } from '../../components.js';
import { useApi } from '../../context.js';
import { AddKeyToServer } from './AddKeyToServer.js';
import { privateKeyPathOf } from './keys.js';
import type { ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/**
 * Step 2: the key lipsync logs in with: one of ~/.ssh, a new ed25519 key, or any key file.
 * The selected key is then put on the server (shown, copied, or installed with a password)
 * and tested itself.
 */
export function KeyStep({
  server,
  initialKey,
  onBack,
  onReady,
}: {
  server: ServerTarget;
  initialKey: string | undefined;
  onBack: () => void;
  onReady: (identityFile: string) => void;
}) {
  const api = useApi();
  const ids = useId();
  const [keys, setKeys] = useState<SshKeyInfo[] | null>(null);
  const [keyPath, setKeyPath] = useState(initialKey ?? '');
  const [otherPath, setOtherPath] = useState('');
  const list = useCall(() => api.call('listKeys', {}));
  const generate = useCall(() => api.call('generateKey', { comment: `lipsync@${server.host}` }));
  const readKey = useCall((path: string) => api.call('readKey', { path }));

  const runList = list.run;
  useEffect(() => {
    void runList().then((ks) => {
      if (!ks) return;
      setKeys((prev) => merge(ks, prev ?? []));
      // The key lipsync made (a reload or Back must not lose it), else the first one.
      const made = ks.find((k) => k.path.endsWith('/id_ed25519_lipsync'));
      setKeyPath((p) => p || (made ?? ks[0])?.path || '');
    });
  }, [runList]);

  const use = (k: SshKeyInfo) => {
    setKeys((prev) => merge(prev ?? [], [k]));
    setKeyPath(k.path);
  };
  const onGenerate = async () => {
    const k = await generate.run();
    if (k) use(k);
  };
  const onOther = async (e: FormEvent) => {
    e.preventDefault();
    const k = await readKey.run(otherPath.trim());
    if (k) {
      use(k);
      setOtherPath('');
    }
  };

  const selected = keys?.find((k) => k.path === keyPath || privateKeyPathOf(k) === keyPath) ?? null;

  return (
    <div className="card">
      <h3>SSH key</h3>
      <p>lipsync logs in to {server.host} with an SSH key. Pick one of your keys, or generate a new one (ed25519).</p>
      {list.error ? <ErrorBox error={list.error} title="SSH keys" /> : null}
      {keys === null && !list.error ? (
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
                checked={selected?.path === k.path}
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
        <button type="button" onClick={() => void onGenerate()} disabled={generate.busy}>
          {generate.busy ? 'Generating…' : 'Generate a new ed25519 key'}
        </button>
      </div>
      {generate.error ? <ErrorBox error={generate.error} title="No key generated" /> : null}
      <form onSubmit={(e) => void onOther(e)} aria-label="Use another key file" className="field-row other-key">
        <div className="field grow">
          <label htmlFor={`${ids}-other`}>Another key file</label>
          <input
            id={`${ids}-other`}
            value={otherPath}
            placeholder="/home/you/keys/id_ed25519"
            spellCheck={false}
            onChange={(e) => {
              setOtherPath(e.target.value);
              readKey.reset();
            }}
          />
        </div>
        <div className="actions">
          <button type="submit" disabled={readKey.busy || !otherPath.trim()}>
            {readKey.busy ? 'Reading…' : 'Use this key'}
          </button>
        </div>
      </form>
      {readKey.error ? <ErrorBox error={readKey.error} title="Cannot use this key" /> : null}
      {selected ? <AddKeyToServer key={selected.path} server={server} sshKey={selected} onReady={onReady} /> : null}
      <div className="actions">
        <button type="button" onClick={onBack}>
          Back
        </button>
      </div>
    </div>
  );
}

/** `a` then the keys of `b` not in it (by path). */
function merge(a: SshKeyInfo[], b: SshKeyInfo[]): SshKeyInfo[] {
  const seen = new Set(a.map((k) => k.path));
  return [...a, ...b.filter((k) => !seen.has(k.path))];
}
