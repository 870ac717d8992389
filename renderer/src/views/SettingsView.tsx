import { useEffect, useId, useRef, useState, type FormEvent } from 'react';
import type { ErrorInfo } from '../../../shared/errors.js';
import { BUILTIN_EXCLUDES } from '../../../shared/excludes.js';
import {
  COMPRESS_AUTO_MIN_RTT_MS,
  type CompressionMode,
  type Direction,
  type PairSettings,
} from '../../../shared/settings.js';
import type { PairStatus } from '../../../shared/status.js';
import { toErrorInfo, type PairPatch } from '../api.js';
import { Empty, ErrorBox, Loading } from '../components.js';
import { useApi } from '../context.js';
import { BWLIMIT_UNIT, needsConfirmation, parseExcludes } from '../format.js';
import { PauseControl } from '../PauseControl.js';

export const PREVIEW_DEBOUNCE_MS = 400;

export function SettingsView({ pairs, onRemoved }: { pairs: PairStatus[]; onRemoved?: (id: string) => void }) {
  const api = useApi();
  const pickId = useId();
  const [list, setList] = useState<PairSettings[] | null>(null);
  const [error, setError] = useState<ErrorInfo | null>(null);
  const [reloadN, setReloadN] = useState(0);
  const [current, setCurrent] = useState<string>('');

  useEffect(() => {
    let live = true;
    api.call('list', {}).then(
      (l) => {
        if (!live) return;
        setList(l);
        setError(null);
      },
      (e: unknown) => live && setError(toErrorInfo(e)),
    );
    return () => {
      live = false;
    };
  }, [api, reloadN]);

  if (error && !list)
    return <ErrorBox error={error} title="Could not load folder settings" onRetry={() => setReloadN((n) => n + 1)} />;
  if (!list) return <Loading what="folder settings" />;
  if (list.length === 0)
    return (
      <section aria-labelledby="settings-title">
        <h2 id="settings-title">Folder settings</h2>
        <Empty>
          <p>No folders yet. Add one first.</p>
        </Empty>
      </section>
    );

  const selected = list.find((p) => p.id === current) ?? (list[0] as PairSettings);
  const st = pairs.find((p) => p.id === selected.id);
  return (
    <section aria-labelledby="settings-title">
      <div className="view-head">
        <h2 id="settings-title">Folder settings</h2>
        {list.length > 1 ? (
          <div className="field inline">
            <label htmlFor={pickId}>Folder</label>
            <select id={pickId} value={selected.id} onChange={(e) => setCurrent(e.target.value)}>
              {list.map((p) => (
                <option key={p.id} value={p.id}>
                  {p.id}
                </option>
              ))}
            </select>
          </div>
        ) : null}
      </div>
      <PairSettingsForm
        key={selected.id}
        settings={selected}
        paused={st ? st.state === 'paused' : selected.paused}
        canResume={!st || !needsConfirmation(st)}
        onSaved={(s) => setList((prev) => (prev ? prev.map((p) => (p.id === s.id ? s : p)) : prev))}
        onRemoved={(id) => {
          setList((prev) => (prev ? prev.filter((p) => p.id !== id) : prev));
          onRemoved?.(id);
        }}
      />
    </section>
  );
}

type Preview =
  | { state: 'idle' }
  | { state: 'loading' }
  | { state: 'done'; excluded: string[]; count: number; truncated: boolean }
  | { state: 'error'; error: ErrorInfo };

export function PairSettingsForm({
  settings,
  paused,
  canResume = true,
  onSaved,
  onRemoved,
}: {
  settings: PairSettings;
  paused: boolean;
  /** False while the pair waits for a confirmation (Status has the Confirm button). */
  canResume?: boolean;
  onSaved: (s: PairSettings) => void;
  onRemoved: (id: string) => void;
}) {
  const api = useApi();
  const ids = useId();
  const [direction, setDirection] = useState<Direction>(settings.direction);
  const [excludes, setExcludes] = useState(settings.excludes.join('\n'));
  const [bw, setBw] = useState(String(settings.bwLimitKBps));
  const [compression, setCompression] = useState<CompressionMode>(settings.compression);
  const [rescan, setRescan] = useState(String(settings.rescanIntervalSec));
  const [saving, setSaving] = useState(false);
  const [saved, setSaved] = useState(false);
  const [saveError, setSaveError] = useState<ErrorInfo | null>(null);
  const [preview, setPreview] = useState<Preview>({ state: 'idle' });
  const [confirmRemove, setConfirmRemove] = useState(false);
  const [removing, setRemoving] = useState(false);
  const [removeError, setRemoveError] = useState<ErrorInfo | null>(null);
  const [pauseError, setPauseError] = useState<ErrorInfo | null>(null);
  const previewSeq = useRef(0);
  const first = useRef(true);

  // Live preview of what the patterns exclude: debounced, and only the newest answer counts.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      if (settings.excludes.length === 0) return;
    }
    const patterns = parseExcludes(excludes);
    const n = ++previewSeq.current;
    if (patterns.length === 0) {
      setPreview({ state: 'idle' });
      return;
    }
    setPreview({ state: 'loading' });
    const t = setTimeout(() => {
      api.call('previewExcludes', { pair: settings.id, excludes: patterns }).then(
        (r) => n === previewSeq.current && setPreview({ state: 'done', ...r }),
        (e: unknown) => n === previewSeq.current && setPreview({ state: 'error', error: toErrorInfo(e) }),
      );
    }, PREVIEW_DEBOUNCE_MS);
    return () => clearTimeout(t);
    // Only the text and the pair matter: saving (new `settings`) must not re-run the preview.
  }, [api, excludes, settings.id]);

  const bwN = Number(bw);
  const rescanN = Number(rescan);
  const bwValid = bw.trim() !== '' && Number.isInteger(bwN) && bwN >= 0;
  const rescanValid = rescan.trim() !== '' && Number.isInteger(rescanN) && rescanN >= 1 && rescanN <= 604800;

  const patch: PairPatch = {};
  if (direction !== settings.direction) patch.direction = direction;
  const ex = parseExcludes(excludes);
  if (ex.join('\n') !== settings.excludes.join('\n')) patch.excludes = ex;
  if (bwValid && bwN !== settings.bwLimitKBps) patch.bwLimitKBps = bwN;
  if (compression !== settings.compression) patch.compression = compression;
  if (rescanValid && rescanN !== settings.rescanIntervalSec) patch.rescanIntervalSec = rescanN;
  const dirty = Object.keys(patch).length > 0;

  const save = async (e: FormEvent) => {
    e.preventDefault();
    if (!dirty || !bwValid || !rescanValid) return;
    setSaving(true);
    setSaveError(null);
    setSaved(false);
    try {
      const s = await api.call('update', { pair: settings.id, patch });
      setSaved(true);
      onSaved(s);
    } catch (err) {
      setSaveError(toErrorInfo(err));
    } finally {
      setSaving(false);
    }
  };

  const remove = async () => {
    setRemoving(true);
    setRemoveError(null);
    try {
      await api.call('remove', { pair: settings.id });
      onRemoved(settings.id);
    } catch (err) {
      setRemoveError(toErrorInfo(err));
      setRemoving(false);
    }
  };

  return (
    <div className="card settings-card">
      <p className="paths">
        <code>{settings.local}</code> ⇄ <code>{settings.remote}</code>
      </p>
      <form onSubmit={save} aria-label={`Settings for ${settings.id}`}>
        <div className="field">
          <label htmlFor={`${ids}-dir`}>Direction</label>
          <select
            id={`${ids}-dir`}
            value={direction}
            onChange={(e) => {
              setDirection(e.target.value as Direction);
              setSaved(false);
            }}
          >
            <option value="two-way">Both ways</option>
            <option value="send-only">Only send (this computer → server)</option>
            <option value="receive-only">Only receive (server → this computer)</option>
          </select>
        </div>
        <div className="field">
          <label htmlFor={`${ids}-ex`}>Excludes</label>
          <p className="hint" id={`${ids}-ex-hint`}>
            One pattern per line, gitignore syntax (for example <code>node_modules/</code>, <code>*.log</code>,{' '}
            <code>/build</code>). Lines starting with # are comments.
          </p>
          <div className="builtin-excludes" aria-label="Always excluded">
            <span className="muted small">Always excluded (built in): </span>
            <ul className="inline-list">
              {BUILTIN_EXCLUDES.map((p) => (
                <li key={p}>
                  <code>{p}</code>
                </li>
              ))}
            </ul>
            <span className="muted small">
              {' '}
              A line like <code>!Thumbs.db</code> re-includes one of them; nothing re-includes <code>.lipsync/</code>.
            </span>
          </div>
          <textarea
            id={`${ids}-ex`}
            aria-describedby={`${ids}-ex-hint`}
            rows={6}
            spellCheck={false}
            value={excludes}
            onChange={(e) => {
              setExcludes(e.target.value);
              setSaved(false);
            }}
          />
          <div className="preview" aria-live="polite" aria-label="Exclude preview">
            {preview.state === 'loading' ? (
              <p className="muted">Checking which files these patterns exclude…</p>
            ) : preview.state === 'error' ? (
              <ErrorBox error={preview.error} title="Could not preview" />
            ) : preview.state === 'done' ? (
              preview.count === 0 ? (
                <p className="muted">No existing files match these patterns.</p>
              ) : (
                <>
                  <p>
                    Excludes {preview.truncated ? 'at least ' : ''}
                    {preview.count} existing file{preview.count === 1 ? '' : 's'} or folder
                    {preview.count === 1 ? '' : 's'}:
                  </p>
                  <ul className="preview-list">
                    {preview.excluded.map((p) => (
                      <li key={p}>
                        <code>{p}</code>
                      </li>
                    ))}
                  </ul>
                  {preview.truncated ? <p className="muted small">…and more (list shortened).</p> : null}
                </>
              )
            ) : null}
          </div>
        </div>
        <div className="field-row">
          <div className="field">
            <label htmlFor={`${ids}-bw`}>Bandwidth limit ({BWLIMIT_UNIT}, 0 = no limit)</label>
            <input
              id={`${ids}-bw`}
              type="number"
              min={0}
              step={1}
              inputMode="numeric"
              value={bw}
              aria-invalid={!bwValid}
              onChange={(e) => {
                setBw(e.target.value);
                setSaved(false);
              }}
            />
            {!bwValid ? <p className="field-error">Enter a whole number, 0 or more.</p> : null}
          </div>
          <div className="field">
            <label htmlFor={`${ids}-zip`}>Compression</label>
            <select
              id={`${ids}-zip`}
              aria-describedby={`${ids}-zip-hint`}
              value={compression}
              onChange={(e) => {
                setCompression(e.target.value as CompressionMode);
                setSaved(false);
              }}
            >
              <option value="auto">Auto</option>
              <option value="on">On</option>
              <option value="off">Off</option>
            </select>
            <p className="hint" id={`${ids}-zip-hint`}>
              Auto: on over slow or distant links (round trip ≥ {COMPRESS_AUTO_MIN_RTT_MS} ms), off on a LAN
            </p>
          </div>
          <div className="field">
            <label htmlFor={`${ids}-rescan`}>Full rescan every (seconds)</label>
            <input
              id={`${ids}-rescan`}
              type="number"
              min={1}
              max={604800}
              step={1}
              inputMode="numeric"
              value={rescan}
              aria-invalid={!rescanValid}
              onChange={(e) => {
                setRescan(e.target.value);
                setSaved(false);
              }}
            />
            {!rescanValid ? <p className="field-error">Enter a whole number from 1 to 604800 (a week).</p> : null}
          </div>
        </div>
        {saveError ? <ErrorBox error={saveError} title="Not saved" /> : null}
        <div className="actions">
          <button type="submit" className="primary" disabled={!dirty || saving || !bwValid || !rescanValid}>
            {saving ? 'Saving…' : 'Save'}
          </button>
          {saved ? (
            <span role="status" className="ok-text">
              Saved.
            </span>
          ) : null}
        </div>
      </form>
      <hr />
      <div className="actions">
        <PauseControl
          pair={settings.id}
          paused={paused}
          canResume={canResume}
          pauseLabel="Pause syncing"
          resumeLabel="Resume syncing"
          onError={setPauseError}
        />
        <button type="button" className="danger" onClick={() => setConfirmRemove(true)} disabled={confirmRemove}>
          Remove this folder…
        </button>
      </div>
      {pauseError ? <ErrorBox error={pauseError} /> : null}
      {confirmRemove ? (
        <div
          className="confirm"
          role="alertdialog"
          aria-labelledby={`${ids}-rm-title`}
          aria-describedby={`${ids}-rm-desc`}
        >
          <strong id={`${ids}-rm-title`}>Stop syncing {settings.id}?</strong>
          <p id={`${ids}-rm-desc`}>
            Removing stops syncing this folder. It never deletes files: <code>{settings.local}</code> on this computer
            and <code>{settings.remote}</code> on the server stay exactly as they are.
          </p>
          {removeError ? <ErrorBox error={removeError} /> : null}
          <div className="actions">
            <button type="button" className="danger" onClick={remove} disabled={removing} autoFocus>
              {removing ? 'Removing…' : 'Remove (keep all files)'}
            </button>
            <button type="button" onClick={() => setConfirmRemove(false)} disabled={removing}>
              Cancel
            </button>
          </div>
        </div>
      ) : null}
    </div>
  );
}
