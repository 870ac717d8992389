import { useCallback, useState } from 'react';
import type { SyncPairResult } from '../../../shared/api.js';
import type { ErrorInfo } from '../../../shared/errors.js';
import type { PairStatus, TransferProgress } from '../../../shared/status.js';
import { toErrorInfo } from '../api.js';
import { Badge, Empty, ErrorBox, Loading } from '../components.js';
import { useApi, type EngineState } from '../context.js';
import { formatAgo, formatBytes, formatRate, pairStateLabel } from '../format.js';

export function ProgressBar({ progress, label }: { progress: TransferProgress; label: string }) {
  const total = Math.max(progress.filesTotal, progress.filesDone);
  const pct = total > 0 ? Math.round((progress.filesDone / total) * 100) : 0;
  return (
    <div className="progress">
      <div
        className="progress-track"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={total || 100}
        aria-valuenow={progress.filesDone}
        aria-valuetext={`${progress.filesDone} of ${total} files`}
      >
        <div className="progress-fill" style={{ width: `${pct}%` }} />
      </div>
      <div className="progress-text">
        <span>
          {progress.filesDone} / {total} files
        </span>
        <span>{formatBytes(progress.bytesDone)}</span>
        <span>{formatRate(progress.rateBps)}</span>
      </div>
    </div>
  );
}

export function PairCard({ pair, onOpenConflicts }: { pair: PairStatus; onOpenConflicts?: () => void }) {
  const api = useApi();
  const [syncing, setSyncing] = useState(false);
  const [toggling, setToggling] = useState(false);
  const [actionError, setActionError] = useState<ErrorInfo | null>(null);
  const [lastResult, setLastResult] = useState<SyncPairResult | null>(null);
  const { label, tone } = pairStateLabel(pair);
  const paused = pair.state === 'paused';
  const running = syncing || pair.state === 'syncing';
  const problem = pair.reason ?? pair.lastError;

  const syncNow = useCallback(async () => {
    setSyncing(true);
    setActionError(null);
    try {
      const r = await api.call('sync', { pair: pair.id });
      const mine = r.results.find((x) => x.pair === pair.id) ?? null;
      setLastResult(mine);
      if (mine?.error) setActionError(mine.error);
    } catch (e) {
      setActionError(toErrorInfo(e));
    } finally {
      setSyncing(false);
    }
  }, [api, pair.id]);

  const togglePause = useCallback(async () => {
    setToggling(true);
    setActionError(null);
    try {
      if (paused) await api.call('resume', { pair: pair.id });
      else await api.call('pause', { pair: pair.id });
    } catch (e) {
      setActionError(toErrorInfo(e));
    } finally {
      setToggling(false);
    }
  }, [api, pair.id, paused]);

  return (
    <article className="card pair-card" aria-labelledby={`pair-${pair.id}-title`} data-pair={pair.id}>
      <header className="card-head">
        <div>
          <h3 id={`pair-${pair.id}-title`}>{pair.id}</h3>
          <p className="paths">
            <code>{pair.local}</code> <span aria-label={directionLabel(pair.direction)}>{arrow(pair.direction)}</span>{' '}
            <code>{pair.remote}</code>
          </p>
        </div>
        <Badge tone={tone}>
          <span data-testid={`state-${pair.id}`}>{label}</span>
        </Badge>
      </header>
      <dl className="facts">
        <div>
          <dt>Last sync</dt>
          <dd>{formatAgo(pair.lastSyncAt)}</dd>
        </div>
        <div>
          <dt>Files</dt>
          <dd>{pair.entries}</dd>
        </div>
        <div>
          <dt>Waiting</dt>
          <dd>{pair.pending}</dd>
        </div>
        <div>
          <dt>Server changes</dt>
          <dd>{remoteWatcherLabel(pair.remoteWatcher)}</dd>
        </div>
      </dl>
      {pair.progress && pair.state === 'syncing' ? (
        <ProgressBar progress={pair.progress} label={`Transfer progress for ${pair.id}`} />
      ) : null}
      {pair.conflicts > 0 ? (
        <p className="notice notice-warn">
          {pair.conflicts} file{pair.conflicts === 1 ? ' was' : 's were'} changed on both sides. Both versions are kept
          until you choose.{' '}
          {onOpenConflicts ? (
            <button type="button" className="link" onClick={onOpenConflicts}>
              Resolve conflicts
            </button>
          ) : null}
        </p>
      ) : null}
      {problem ? <ErrorBox error={problem} title={pair.state === 'paused' ? 'Paused' : 'Problem'} /> : null}
      {pair.warnings.map((w, i) => (
        <div key={i} className="notice notice-warn" role="status">
          <p className="notice-message">{w.message}</p>
          {w.fix ? <p className="notice-fix">{w.fix}</p> : null}
        </div>
      ))}
      {actionError && actionError !== problem ? <ErrorBox error={actionError} /> : null}
      {lastResult && lastResult.ok && !syncing ? (
        <p className="muted small" role="status">
          Last run: {lastResult.filesSent} sent, {lastResult.filesReceived} received, {lastResult.deleted} deleted
          {lastResult.conflicts ? `, ${lastResult.conflicts} conflicts` : ''}.
        </p>
      ) : null}
      <div className="actions">
        <button type="button" className="primary" onClick={syncNow} disabled={running || paused} aria-busy={running}>
          {running ? 'Syncing…' : 'Sync now'}
        </button>
        <button type="button" onClick={togglePause} disabled={toggling}>
          {paused ? 'Resume' : 'Pause'}
        </button>
      </div>
    </article>
  );
}

function arrow(d: PairStatus['direction']): string {
  return d === 'send-only' ? '→' : d === 'receive-only' ? '←' : '⇄';
}
function directionLabel(d: PairStatus['direction']): string {
  return d === 'send-only' ? 'sends to' : d === 'receive-only' ? 'receives from' : 'syncs both ways with';
}
function remoteWatcherLabel(w: PairStatus['remoteWatcher']): string {
  return { inotify: 'live', poll: 'polled', disconnected: 'disconnected', none: '—' }[w];
}

export function StatusView({
  engine,
  onAddFolder,
  onOpenConflicts,
}: {
  engine: EngineState;
  onAddFolder: () => void;
  onOpenConflicts: () => void;
}) {
  const { status, error, loading, reload } = engine;
  if (!status && loading) return <Loading what="status" />;
  if (!status && error) return <ErrorBox error={error} title="Could not load the status" onRetry={reload} />;
  if (!status) return <Loading what="status" />;
  return (
    <section aria-labelledby="status-title">
      <div className="view-head">
        <h2 id="status-title">Status</h2>
        <button type="button" onClick={onAddFolder}>
          Add folder
        </button>
      </div>
      {error ? <ErrorBox error={toErrorInfo(error)} title="Status may be out of date" onRetry={reload} /> : null}
      {status.pairs.length === 0 ? (
        <Empty>
          <p>No folders are synced yet.</p>
          <button type="button" className="primary" onClick={onAddFolder}>
            Set up a folder
          </button>
        </Empty>
      ) : (
        <div className="cards">
          {status.pairs.map((p) => (
            <PairCard key={p.id} pair={p} onOpenConflicts={onOpenConflicts} />
          ))}
        </div>
      )}
    </section>
  );
}
