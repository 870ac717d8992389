import { useEffect, useId, useState } from 'react';
import { fallbackFix, splitLogFix, type ErrorInfo } from '../../../shared/errors.js';
import { RECENT_EVENTS as API_RECENT_EVENTS } from '../../../shared/api.js';
import type { LogRecord, PairStatus } from '../../../shared/status.js';
import { toErrorInfo } from '../api.js';
import { Empty, ErrorBox, Loading, RichText } from '../components.js';
import { useApi } from '../context.js';
import { formatBytes, formatTime, joinPath } from '../format.js';
import { FolderSelect } from './FolderSelect.js';

/** What the list shows: the same events the engine's `recent` returns (file changes, sync errors). */
export const RECENT_EVENTS: ReadonlySet<LogRecord['event']> = new Set(API_RECENT_EVENTS);
const LIMIT = 200;

const EVENT_LABEL: Record<string, string> = {
  push: 'Sent',
  pull: 'Received',
  delete: 'Deleted',
  rename: 'Renamed',
  conflict: 'Conflict',
};

const badgeOf = (r: LogRecord) =>
  r.event === 'error' ? (r.level === 'error' ? 'Problem' : 'Warning') : (EVENT_LABEL[r.event] ?? r.event);

/** A sync error or warning of the log: its sentence and how to fix it (split from "… Fix: …"). */
function ProblemText({ r }: { r: LogRecord }) {
  const { message, fix } = splitLogFix(r.msg);
  const how = fix ?? fallbackFix(message);
  return (
    <div className="recent-problem">
      <p className="notice-message">
        <RichText text={message} />
      </p>
      {how ? (
        <p className="notice-fix">
          <span className="fix-label">How to fix: </span>
          <RichText text={how} />
        </p>
      ) : null}
      {r.paths && r.paths.length > 0 ? (
        <div className="recent-path">
          <code>{r.paths[0]}</code>
          {r.paths.length > 1 ? <MorePaths paths={r.paths.slice(1)} /> : null}
        </div>
      ) : null}
    </div>
  );
}

/** The local file a record is about (the first path; the new name for a rename). */
function recordPath(r: LogRecord): string | null {
  if (r.event === 'rename' && r.to) return r.to;
  return r.paths?.[0] ?? null;
}

export function RecentView({ pairs }: { pairs: PairStatus[] }) {
  const api = useApi();
  const filterId = useId();
  const [filter, setFilter] = useState('');
  const [records, setRecords] = useState<LogRecord[] | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [attempt, setAttempt] = useState(0);
  const openPath = api.bridge.openPath?.bind(api.bridge);
  const showInFolder = api.bridge.showInFolder?.bind(api.bridge);

  useEffect(() => {
    let live = true;
    setRecords(null);
    setError(null);
    const buffered: LogRecord[] = [];
    let loaded = false;
    const accept = (r: LogRecord) => RECENT_EVENTS.has(r.event) && (!filter || r.pair === filter);
    const off = api.bridge.onLog((r) => {
      if (!live || !accept(r)) return;
      if (!loaded) buffered.push(r);
      else setRecords((prev) => [...(prev ?? []), r].slice(-LIMIT));
    });
    api.call('recent', filter ? { pair: filter, limit: LIMIT } : { limit: LIMIT }).then(
      (rs) => {
        if (!live) return;
        loaded = true;
        const seen = new Set(rs.map(key));
        setRecords([...rs.filter(accept), ...buffered.filter((b) => !seen.has(key(b)))].slice(-LIMIT));
      },
      (e: unknown) => live && setError(toErrorInfo(e)),
    );
    return () => {
      live = false;
      off();
    };
  }, [api, filter, attempt]);

  const pairById = new Map(pairs.map((p) => [p.id, p]));
  const shown = records ? [...records].reverse() : null;

  return (
    <section aria-labelledby="recent-title">
      <div className="view-head">
        <h2 id="recent-title">Recent changes</h2>
        <div className="field inline">
          <label htmlFor={filterId}>Folder</label>
          <FolderSelect id={filterId} pairs={pairs} value={filter} onChange={setFilter} />
        </div>
      </div>
      {error ? (
        <ErrorBox error={error} title="Could not load recent changes" onRetry={() => setAttempt((n) => n + 1)} />
      ) : !shown ? (
        <Loading what="recent changes" />
      ) : shown.length === 0 ? (
        <Empty>
          <p>
            No changes yet{filter ? ` in ${filter}` : ''}. Files you add, edit or delete will show up here, and any
            problem a sync ran into.
          </p>
        </Empty>
      ) : (
        <ul className="recent-list" aria-label="Recent changes">
          {shown.map((r, i) => {
            const rel = recordPath(r);
            const pair = pairById.get(r.pair);
            const canOpen = openPath && pair && rel && r.event !== 'delete' && r.event !== 'error';
            return (
              <li key={`${key(r)}-${i}`} className={`recent-item ev-${r.event}`} data-pair={r.pair}>
                <span className={`ev-badge ev-${r.event}${r.event === 'error' ? ` lv-${r.level}` : ''}`}>
                  {badgeOf(r)}
                </span>
                <div className="recent-main">
                  {r.event === 'error' ? (
                    <ProblemText r={r} />
                  ) : (
                    <div className="recent-path">
                      {r.event === 'rename' && r.from && r.to ? (
                        <>
                          <code>{r.from}</code> → <code>{r.to}</code>
                        </>
                      ) : r.paths && r.paths.length > 0 ? (
                        <>
                          <code>{r.paths[0]}</code>
                          {r.paths.length > 1 ? <MorePaths paths={r.paths.slice(1)} /> : null}
                        </>
                      ) : (
                        <span>{r.msg}</span>
                      )}
                    </div>
                  )}
                  <div className="muted small">
                    <span className="recent-pair">{r.pair}</span> ·{' '}
                    <time dateTime={new Date(r.t).toISOString()}>{formatTime(r.t)}</time>
                    {r.bytes ? ` · ${formatBytes(r.bytes)}` : ''}
                  </div>
                </div>
                {canOpen ? (
                  <button
                    type="button"
                    onClick={() => void openPath(joinPath(pair.local, rel))}
                    aria-label={`Open ${rel}`}
                  >
                    Open
                  </button>
                ) : null}
                {canOpen && showInFolder ? (
                  <button
                    type="button"
                    onClick={() => void showInFolder(joinPath(pair.local, rel))}
                    aria-label={`Show ${rel} in folder`}
                  >
                    Show in folder
                  </button>
                ) : null}
              </li>
            );
          })}
        </ul>
      )}
    </section>
  );
}

/** "and N more" of a record with several paths: a button that lists them. */
function MorePaths({ paths }: { paths: string[] }) {
  const [open, setOpen] = useState(false);
  const id = useId();
  return (
    <>
      {' '}
      <button
        type="button"
        className="link"
        aria-expanded={open}
        aria-controls={open ? id : undefined}
        onClick={() => setOpen((o) => !o)}
      >
        {open ? 'show fewer' : `and ${paths.length} more`}
      </button>
      {open ? (
        <ul id={id} className="more-paths">
          {paths.map((p, i) => (
            <li key={`${p}-${i}`}>
              <code>{p}</code>
            </li>
          ))}
        </ul>
      ) : null}
    </>
  );
}

function key(r: LogRecord): string {
  return `${r.t}|${r.pair}|${r.event}|${r.msg}`;
}
