import { useEffect, useState, type FormEvent } from 'react';
import type { VersionInfo } from '../../../shared/api.js';
import type { ErrorInfo } from '../../../shared/errors.js';
import type { PairStatus } from '../../../shared/status.js';
import { toErrorInfo } from '../api.js';
import { Empty, ErrorBox, Loading } from '../components.js';
import { useApi } from '../context.js';
import { formatBytes, formatTime } from '../format.js';
import { FolderSelect } from './FolderSelect.js';

/** `dir/name.ext` → `dir/name (restored 2026-12-07 1405).ext`: where "Restore next to it" puts a version. */
export function restoredName(path: string, at: Date = new Date()): string {
  const slash = path.lastIndexOf('/');
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const dot = base.lastIndexOf('.');
  const [stem, ext] = dot > 0 && dot < base.length - 1 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
  const iso = at.toISOString();
  return `${dir}${stem} (restored ${iso.slice(0, 10)} ${iso.slice(11, 16).replace(':', '')})${ext}`;
}

/**
 * Older and deleted versions of files, from both sides' trash (`versions`), searchable by
 * name; each can be restored to its place (what is there goes to the trash first, so the
 * restore can be undone) or next to it.
 */
export function VersionsView({ pairs }: { pairs: PairStatus[] }) {
  const api = useApi();
  const [pair, setPair] = useState<string>('');
  const [query, setQuery] = useState('');
  const [asked, setAsked] = useState({ pair: '', query: '', n: 0 });
  const [items, setItems] = useState<VersionInfo[] | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [done, setDone] = useState<string | null>(null);

  useEffect(() => {
    let live = true;
    setItems(null);
    const params: { pair?: string; query?: string } = {};
    if (asked.pair) params.pair = asked.pair;
    if (asked.query) params.query = asked.query;
    api.call('versions', params).then(
      (vs) => {
        if (!live) return;
        setItems(vs);
        setError(null);
      },
      (e: unknown) => live && setError(toErrorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [api, asked]);

  const search = (e: FormEvent) => {
    e.preventDefault();
    setAsked((a) => ({ pair, query: query.trim(), n: a.n + 1 }));
  };

  const restore = async (v: VersionInfo, nextToIt: boolean) => {
    setBusy(v.id);
    setError(null);
    setDone(null);
    try {
      const params: { pair: string; id: string; to?: string } = { pair: v.pair, id: v.id };
      if (nextToIt) params.to = restoredName(v.path);
      const r = await api.call('restore', params);
      setDone(
        `Restored ${r.path} in ${r.pair}.` +
          (r.replacedTo ? ` The version it replaced is kept in ${r.replacedTo}.` : ''),
      );
      setAsked((a) => ({ ...a, n: a.n + 1 }));
    } catch (e) {
      setError(toErrorInfo(e));
    } finally {
      setBusy(null);
    }
  };

  return (
    <section aria-labelledby="versions-title">
      <div className="view-head">
        <h2 id="versions-title">Versions</h2>
      </div>
      <p className="muted">
        Every version that a sync replaced or deleted is kept for 30 days, here and on the server. Restoring one puts it
        back and syncs it; whatever is at that path now is kept as a version too.
      </p>
      <form className="field-row" onSubmit={search} role="search" aria-label="Find versions">
        <div className="field">
          <label htmlFor="versions-pair">Folder</label>
          <FolderSelect id="versions-pair" pairs={pairs} value={pair} onChange={setPair} />
        </div>
        <div className="field">
          <label htmlFor="versions-query">Name contains</label>
          <input id="versions-query" value={query} onChange={(e) => setQuery(e.target.value)} />
        </div>
        <button type="submit">Search</button>
      </form>
      {done ? (
        <p role="status" className="notice">
          {done}
        </p>
      ) : null}
      {error ? <ErrorBox error={error} title="Versions" /> : null}
      {!items ? (
        error ? null : (
          <Loading what="versions" />
        )
      ) : items.length === 0 ? (
        <Empty>
          <p>No versions kept{asked.query ? ` matching “${asked.query}”` : ''}.</p>
        </Empty>
      ) : (
        <table className="versions" aria-label="Kept versions">
          <thead>
            <tr>
              <th scope="col">File</th>
              <th scope="col">Size</th>
              <th scope="col">Modified</th>
              <th scope="col">Replaced</th>
              <th scope="col">Kept on</th>
              <th scope="col">
                <span className="sr-only">Actions</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {items.map((v) => (
              <tr key={v.id} data-version={v.id}>
                <th scope="row">
                  <code>{v.path}</code> <span className="muted small">in {v.pair}</span>
                </th>
                <td>{formatBytes(v.size)}</td>
                <td>{formatTime(v.mtime)}</td>
                <td>{formatTime(v.trashedAt)}</td>
                <td>{v.side === 'local' ? `this computer (${v.origin})` : `the server (${v.origin})`}</td>
                <td className="actions">
                  <button
                    type="button"
                    disabled={busy !== null}
                    onClick={() => void restore(v, false)}
                    aria-label={`Restore ${v.path} from ${formatTime(v.trashedAt)}`}
                  >
                    Restore
                  </button>
                  <button
                    type="button"
                    disabled={busy !== null}
                    onClick={() => void restore(v, true)}
                    aria-label={`Restore ${v.path} from ${formatTime(v.trashedAt)} next to it`}
                  >
                    Restore next to it
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
