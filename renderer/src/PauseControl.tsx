import { useId, useState } from 'react';
import type { ErrorInfo } from '../../shared/errors.js';
import { toErrorInfo } from './api.js';
import { ErrorBox } from './components.js';
import { useApi } from './context.js';

/** How long "Pause" lasts: the tray's choices (electron/main/logic/tray.ts PAUSE_CHOICES). */
export const PAUSE_CHOICES: { label: string; forMs?: number }[] = [
  { label: '30 minutes', forMs: 30 * 60_000 },
  { label: '1 hour', forMs: 60 * 60_000 },
  { label: '8 hours', forMs: 8 * 60 * 60_000 },
  { label: 'Until resumed' },
];

/**
 * Pause (for 30 min, 1 h, 8 h or until resumed) or Resume one pair. `canResume` is false
 * while the pair waits for a confirmation (resuming would not unpause it).
 */
export function PauseControl({
  pair,
  paused,
  canResume = true,
  pauseLabel = 'Pause',
  resumeLabel = 'Resume',
  onError,
}: {
  pair: string;
  paused: boolean;
  canResume?: boolean;
  pauseLabel?: string;
  resumeLabel?: string;
  /** Where a failed pause/resume is shown (else below the buttons). */
  onError?: (e: ErrorInfo | null) => void;
}) {
  const api = useApi();
  const menuId = useId();
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ErrorInfo | null>(null);

  const run = async (fn: () => Promise<unknown>) => {
    setBusy(true);
    setError(null);
    onError?.(null);
    try {
      await fn();
    } catch (e) {
      if (onError) onError(toErrorInfo(e));
      else setError(toErrorInfo(e));
    } finally {
      setBusy(false);
    }
  };

  const pause = (forMs?: number) => {
    setOpen(false);
    void run(() => api.call('pause', forMs === undefined ? { pair } : { pair, forMs }));
  };

  return (
    <>
      {paused ? (
        canResume ? (
          <button type="button" onClick={() => void run(() => api.call('resume', { pair }))} disabled={busy}>
            {resumeLabel}
          </button>
        ) : null
      ) : (
        <button
          type="button"
          onClick={() => setOpen((o) => !o)}
          disabled={busy}
          aria-expanded={open}
          aria-controls={open ? menuId : undefined}
        >
          {pauseLabel}
        </button>
      )}
      {open && !paused ? (
        <div className="pause-choices" id={menuId} role="group" aria-label={`Pause ${pair} for how long`}>
          {PAUSE_CHOICES.map((c) => (
            <button key={c.label} type="button" onClick={() => pause(c.forMs)}>
              {c.label}
            </button>
          ))}
          <button type="button" className="link" onClick={() => setOpen(false)}>
            Cancel
          </button>
        </div>
      ) : null}
      {error ? <ErrorBox error={error} /> : null}
    </>
  );
}
