import { useState } from 'react';

/** A block of text to copy (a public key, a command), with a Copy button that says whether it worked. */
export function CopyBlock({ text, label, testId }: { text: string; label: string; testId: string }) {
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied('yes');
    } catch {
      setCopied('failed');
    }
  };
  return (
    <div className="copy-block">
      <pre data-testid={testId} aria-label={label}>
        {text}
      </pre>
      <button type="button" className="small-btn" onClick={() => void copy()} aria-label={`Copy ${label}`}>
        Copy
      </button>
      {copied ? (
        <span role="status" className={copied === 'yes' ? 'ok-text small' : 'muted small'}>
          {copied === 'yes' ? ' Copied.' : ' Select the text and copy it.'}
        </span>
      ) : null}
    </div>
  );
}
