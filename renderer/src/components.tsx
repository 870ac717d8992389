import { Fragment, useState, type ReactNode } from 'react';
import type { ErrorInfo } from '../../shared/errors.js';
import type { Tone } from './format.js';

export function ErrorBox({ error, title, onRetry }: { error: ErrorInfo; title?: string; onRetry?: () => void }) {
  return (
    <div className="notice notice-error" role="alert">
      {title ? <strong className="notice-title">{title}</strong> : null}
      <p className="notice-message">
        <RichText text={error.message} />
      </p>
      {error.fix ? (
        <p className="notice-fix">
          <span className="fix-label">How to fix: </span>
          <RichText text={error.fix} />
        </p>
      ) : null}
      {error.files && error.files.length > 0 ? (
        <ul className="notice-files">
          {error.files.slice(0, 10).map((f) => (
            <li key={f}>
              <code>{f}</code>
            </li>
          ))}
        </ul>
      ) : null}
      {onRetry ? (
        <button type="button" onClick={onRetry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <div className="loading" role="status" aria-live="polite">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </div>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Badge({ tone, children }: { tone: Tone; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

/** Text whose `backquoted` parts are code (the engine's messages and fixes): shown as <code>, without the quotes. */
export function RichText({ text }: { text: string }) {
  const parts = text.split(/`([^`]+)`/);
  return (
    <>{parts.map((part, i) => (i % 2 === 1 ? <code key={i}>{part}</code> : <Fragment key={i}>{part}</Fragment>))}</>
  );
}

/**
 * A path with a "Copy" button (the web UI cannot open files on this computer, so it offers
 * the path to paste into a file manager or terminal).
 */
export function CopyPath({ path, label }: { path: string; label?: string }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(path);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <span className="copy-path">
      <code>{path}</code>{' '}
      <button type="button" className="small-btn" onClick={() => void copy()} aria-label={`Copy ${label ?? path}`}>
        Copy
      </button>
      {copied ? (
        <span role="status" className={copied === 'yes' ? 'ok-text small' : 'muted small'}>
          {copied === 'yes' ? ' Copied.' : ' Select the path and copy it.'}
        </span>
      ) : null}
    </span>
  );
}
