import { useId } from 'react';
import type { InitialSyncMode, PreviewInitialSyncResult } from '../../api.js';
import { plural } from './plural.js';

/** Merge, take the server's copy, or take the local copy: each with what it would replace. */
export function InitialSyncChoice({
  mode,
  onMode,
  preview,
}: {
  mode: InitialSyncMode;
  onMode: (m: InitialSyncMode) => void;
  preview: PreviewInitialSyncResult | null;
}) {
  const ids = useId();
  const d = preview?.different;
  const option = (value: InitialSyncMode, title: string, text: string, count: string | null, testId: string) => (
    <label className="radio-card">
      <input type="radio" name={`${ids}-initial`} checked={mode === value} onChange={() => onMode(value)} />
      <span>
        <strong>{title}</strong>
        <br />
        <span className="muted small">{text}</span>
        {count !== null ? (
          <span className="preview-count small" data-testid={testId}>
            <br />
            {count}
          </span>
        ) : null}
      </span>
    </label>
  );
  return (
    <fieldset>
      <legend>When both folders already have files</legend>
      {option(
        'merge',
        'Merge both (recommended)',
        'Files from both sides end up in both places. A file that differs keeps both versions.',
        d === undefined ? null : `Nothing replaced, ${plural(d, 'conflict copy', 'conflict copies')}.`,
        'preview-merge',
      )}
      {option(
        'take-server',
        "Take the server's copy",
        "This computer's folder becomes like the server's. Replaced local files go to the trash, not deleted.",
        d === undefined ? null : `${plural(d, 'local file')} replaced, kept in the trash.`,
        'preview-take-server',
      )}
      {option(
        'take-local',
        'Take the local copy',
        "The server's folder becomes like this computer's. Replaced server files go to the trash, not deleted.",
        d === undefined ? null : `${plural(d, 'file')} on the server replaced, kept in its trash.`,
        'preview-take-local',
      )}
    </fieldset>
  );
}
