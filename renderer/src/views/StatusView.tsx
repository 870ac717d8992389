import { useCallback, useState } from 'react';
import type { SyncPairResult } from '../../../shared/api.js';
import { withFix, type ErrorInfo } from '../../../shared/errors.js';
import type { PairStatus, TransferProgress } from '../../../shared/status.js';
import { toErrorInfo } from '../api.js';
import { Badge, CopyPath, Empty, ErrorBox, Loading, RichText } from '../components.js';
import { useApi, type EngineState } from '../context.js';
import {
  formatAgo,
  formatBytes,
  formatEta,
  formatRate,
  isPauseReason,
  needsConfirmation,
  pairStateLabel,
  pendingLabel,
} from '../format.js';
import { PauseControl } from '../PauseControl.js';

export function ProgressBar({ progress, label }: { progress: TransferProgress; label: string }) {
  const total = Math.max(progress.filesTotal, progress.filesDone);
  // By bytes when the total is known (one big file is not 0 % done until it ends).
  const frac = progress.bytesTotal
    ? Math.min(1, progress.bytesDone / progress.bytesTotal)
    : total > 0
      ? progress.filesDone / total
      : 0;
  const pct = Math.round(frac * 100);
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
        <span data-testid="progress-bytes">
          {progress.bytesTotal
            ? `${formatBytes(progress.bytesDone)} of ${formatBytes(progress.bytesTotal)}`
            : formatBytes(progress.bytesDone)}
        </span>
        <span>{formatRate(progress.rateBps)}</span>
        {progress.etaSec !== undefined && progress.bytesTotal ? (
          <span data-testid="progress-eta">{formatEta(progress.etaSec)} left</span>
        ) : null}
        {progress.currentFile ? (
          <span className="progress-file">
            <code>{progress.currentFile}</code>
          </span>
        ) : null}
      </div>
    </div>
  );
}

export function PairCard({ pair, onOpenConflicts }: { pair: PairStatus; onOpenConflicts?: () => void }) {
  const api = useApi();
  const [syncing, setSyncing] = useState(false);
  const [confirming, setConfirming] = useState(false);
  const [actionError, setActionError] = useState<ErrorInfo | null>(null);
  const [lastResult, setLastResult] = useState<SyncPairResult | null>(null);
  const { label, tone } = pairStateLabel(pair);
  const paused = pair.state === 'paused';
  // A click on "Sync now" then "Pause": the badge says paused, so the button must not say syncing.
  const running = pair.state === 'syncing' || (syncing && !paused);
  const askConfirm = needsConfirmation(pair);
  const pauseNote = isPauseReason(pair) ? pair.reason : undefined;
  const problem = askConfirm || pauseNote ? pair.lastError : (pair.reason ?? pair.lastError);
  const openPath = api.bridge.openPath?.bind(api.bridge);

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

  const confirm = useCallback(async () => {
    setConfirming(true);
    setActionError(null);
    try {
      await api.call('confirm', { pair: pair.id });
    } catch (e) {
      setActionError(toErrorInfo(e));
    } finally {
      setConfirming(false);
    }
  }, [api, pair.id]);

  const openFolder = useCallback(async () => {
    setActionError(null);
    try {
      await openPath?.(pair.local);
    } catch (e) {
      setActionError(toErrorInfo(e));
    }
  }, [openPath, pair.local]);

  return (
    <article className="card pair-card" aria-labelledby={`pair-${pair.id}-title`} data-pair={pair.id}>
      <header className="card-head">
        <div>
          <h3 id={`pair-${pair.id}-title`}>{pair.id}</h3>
          <p className="paths">
            {openPath ? <code>{pair.local}</code> : <CopyPath path={pair.local} label={`path of ${pair.id}`} />}{' '}
            <span aria-label={directionLabel(pair.direction)}>{arrow(pair.direction)}</span> <code>{pair.remote}</code>
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
          <dd>{pendingLabel(pair.pending)}</dd>
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
      {askConfirm && pair.reason ? (
        <div className="notice notice-warn" role="alert">
          <strong className="notice-title">Waiting for your confirmation</strong>
          <p className="notice-message">
            <RichText text={pair.reason.message} />
          </p>
          <p className="notice-fix">
            If that is what you want, confirm: the files are deleted on the other side too (kept in its trash).
            Otherwise restore the files (or mount the disk); nothing is deleted until you confirm.
          </p>
          <button type="button" className="danger" onClick={() => void confirm()} disabled={confirming}>
            {confirming ? 'Confirming…' : 'Confirm deletions'}
          </button>
        </div>
      ) : null}
      {pauseNote ? (
        <p className="notice notice-info" role="status">
          <RichText text={pauseNote.message} />
        </p>
      ) : null}
      {problem ? <ErrorBox error={withFix(problem)} title="Problem" /> : null}
      {pair.warnings.map((w, i) => (
        <div key={i} className="notice notice-warn" role="status">
          <p className="notice-message">
            <RichText text={w.message} />
          </p>
          {w.fix ? (
            <p className="notice-fix">
              <RichText text={w.fix} />
            </p>
          ) : null}
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
        <PauseControl pair={pair.id} paused={paused} canResume={!askConfirm} onError={setActionError} />
        {openPath ? (
          <button type="button" onClick={() => void openFolder()} aria-label={`Open folder ${pair.local}`}>
            Open folder
          </button>
        ) : null}
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
