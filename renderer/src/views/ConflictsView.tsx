import { useCallback, useEffect, useState } from 'react';
import type { ConflictInfo } from '../../../shared/api.js';
import type { ErrorInfo } from '../../../shared/errors.js';
import type { PairStatus } from '../../../shared/status.js';
import { toErrorInfo } from '../api.js';
import { CopyPath, Empty, ErrorBox, Loading } from '../components.js';
import { useApi } from '../context.js';
import { formatBytes, formatTime, joinPath } from '../format.js';

type Keep = 'local' | 'remote' | 'both';
const KEEP_LABEL: Record<Keep, string> = { local: 'Keep local', remote: 'Keep remote', both: 'Keep both' };
/** The conflict's ID: unique across pairs, the one `lipsync conflicts` and `lipsync resolve` use. */
const rowKey = (c: ConflictInfo) => c.id;

/** All open conflicts across pairs. `version` changes (e.g. the status' conflict count) trigger a reload. */
export function ConflictsView({ version, pairs = [] }: { version: number; pairs?: PairStatus[] }) {
  const api = useApi();
  const localOf = new Map(pairs.map((p) => [p.id, p.local]));
  const openPath = api.bridge.openPath?.bind(api.bridge);
  const showInFolder = api.bridge.showInFolder?.bind(api.bridge);

  /** Desktop: open or show a file; a refusal (e.g. the file is gone) is shown like a failed resolve. */
  const desktop = async (fn: ((p: string) => unknown) | undefined, path: string) => {
    setActionError(null);
    try {
      await fn?.(path);
    } catch (e) {
      setActionError(toErrorInfo(e));
    }
  };

  /** One of the conflict's two files: open / show in folder (desktop), or its path with Copy (web). */
  const fileRow = (root: string, rel: string, what: string) => {
    const full = joinPath(root, rel);
    return (
      <li>
        <span className="muted small">{what}: </span>
        {openPath ? <code>{full}</code> : <CopyPath path={full} label={`path of ${rel}`} />}
        {openPath ? (
          <>
            {' '}
            <button
              type="button"
              className="small-btn"
              onClick={() => void desktop(openPath, full)}
              aria-label={`Open ${rel}`}
            >
              Open
            </button>
            {showInFolder ? (
              <>
                {' '}
                <button
                  type="button"
                  className="small-btn"
                  onClick={() => void desktop(showInFolder, full)}
                  aria-label={`Show ${rel} in folder`}
                >
                  Show in folder
                </button>
              </>
            ) : null}
          </>
        ) : null}
      </li>
    );
  };
  const [items, setItems] = useState<ConflictInfo[] | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [actionError, setActionError] = useState<ErrorInfo | null>(null);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [busy, setBusy] = useState(false);
  const [reloadN, setReloadN] = useState(0);

  useEffect(() => {
    let live = true;
    api.call('conflicts', {}).then(
      (cs) => {
        if (!live) return;
        setItems(cs);
        setError(null);
        setSelected((prev) => new Set([...prev].filter((k) => cs.some((c) => rowKey(c) === k))));
      },
      (e: unknown) => live && setError(toErrorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [api, version, reloadN]);

  const resolve = useCallback(
    async (targets: ConflictInfo[], keep: Keep) => {
      setBusy(true);
      setActionError(null);
      const done = new Set<string>();
      try {
        for (const c of targets) {
          await api.call('resolve', { id: c.id, pair: c.pair, keep });
          done.add(rowKey(c));
        }
      } catch (e) {
        setActionError(toErrorInfo(e));
      } finally {
        setItems((prev) => (prev ? prev.filter((c) => !done.has(rowKey(c))) : prev));
        setSelected((prev) => new Set([...prev].filter((k) => !done.has(k))));
        setBusy(false);
        setReloadN((n) => n + 1);
      }
    },
    [api],
  );

  const toggle = (k: string) =>
    setSelected((prev) => {
      const next = new Set(prev);
      if (next.has(k)) next.delete(k);
      else next.add(k);
      return next;
    });

  if (error && !items)
    return <ErrorBox error={error} title="Could not load conflicts" onRetry={() => setReloadN((n) => n + 1)} />;
  if (!items) return <Loading what="conflicts" />;

  const allSelected = items.length > 0 && items.every((c) => selected.has(rowKey(c)));
  const chosen = items.filter((c) => selected.has(rowKey(c)));

  return (
    <section aria-labelledby="conflicts-title">
      <div className="view-head">
        <h2 id="conflicts-title">Conflicts</h2>
      </div>
      {actionError ? <ErrorBox error={actionError} title="Could not resolve" /> : null}
      {items.length === 0 ? (
        <Empty>
          <p>No conflicts. When a file changes on both sides before it syncs, both versions show up here.</p>
        </Empty>
      ) : (
        <>
          <p className="muted">
            Each file below was changed both here and on the server. Until you choose, both versions are kept (the local
            one as a conflict copy).
          </p>
          <div className="bulk-bar" role="group" aria-label="Apply to selected conflicts">
            <label className="check">
              <input
                type="checkbox"
                checked={allSelected}
                onChange={() => setSelected(allSelected ? new Set() : new Set(items.map(rowKey)))}
              />
              Select all
            </label>
            <span className="muted">{chosen.length} selected</span>
            {(['local', 'remote', 'both'] as const).map((k) => (
              <button
                key={k}
                type="button"
                disabled={busy || chosen.length === 0}
                onClick={() => void resolve(chosen, k)}
              >
                {KEEP_LABEL[k]} for selected
              </button>
            ))}
          </div>
          <ul className="conflict-list" aria-label="Open conflicts">
            {items.map((c) => {
              const k = rowKey(c);
              const newer = c.local.mtime > c.remote.mtime ? 'local' : c.remote.mtime > c.local.mtime ? 'remote' : null;
              return (
                <li key={k} className="card conflict-row" data-conflict={k}>
                  <label className="check">
                    <input
                      type="checkbox"
                      checked={selected.has(k)}
                      onChange={() => toggle(k)}
                      aria-label={`Select ${c.path} (${c.pair})`}
                    />
                    <span>
                      <code className="conflict-path">{c.path}</code>{' '}
                      <span className="muted small">
                        in {c.pair} · <span title="lipsync resolve ID">ID {c.id}</span>
                      </span>
                    </span>
                  </label>
                  <table className="versions">
                    <caption className="sr-only">Both versions of {c.path}</caption>
                    <thead>
                      <tr>
                        <th scope="col">Version</th>
                        <th scope="col">Size</th>
                        <th scope="col">Modified</th>
                        <th scope="col">From</th>
                      </tr>
                    </thead>
                    <tbody>
                      <tr>
                        <th scope="row">Local{newer === 'local' ? ' (newer)' : ''}</th>
                        <td>{formatBytes(c.local.size)}</td>
                        <td>{formatTime(c.local.mtime)}</td>
                        <td>{c.local.origin}</td>
                      </tr>
                      <tr>
                        <th scope="row">Remote{newer === 'remote' ? ' (newer)' : ''}</th>
                        <td>{formatBytes(c.remote.size)}</td>
                        <td>{formatTime(c.remote.mtime)}</td>
                        <td>{c.remote.origin}</td>
                      </tr>
                    </tbody>
                  </table>
                  {localOf.has(c.pair) ? (
                    <ul className="conflict-files" aria-label={`Files of ${c.path}`}>
                      {fileRow(localOf.get(c.pair) as string, c.path, 'Under its name')}
                      {fileRow(localOf.get(c.pair) as string, c.copyPath, 'Conflict copy (local version)')}
                    </ul>
                  ) : null}
                  <div className="actions">
                    {(['local', 'remote', 'both'] as const).map((kp) => (
                      <button
                        key={kp}
                        type="button"
                        disabled={busy}
                        onClick={() => void resolve([c], kp)}
                        aria-label={`${KEEP_LABEL[kp]} for ${c.path}`}
                      >
                        {KEEP_LABEL[kp]}
                      </button>
                    ))}
                  </div>
                </li>
              );
            })}
          </ul>
        </>
      )}
    </section>
  );
}
