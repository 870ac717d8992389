import { useEffect, useId } from 'react';
import type { CheckLocalFolderResult } from '../../../../shared/setup.js';
import { ErrorBox } from '../../components.js';
import { useApi } from '../../context.js';
import type { Call } from './useCall.js';

/** How long typing may pause before the folder is checked. */
export const LOCAL_CHECK_DELAY_MS = 400;

/**
 * The folder on this computer: typed (everywhere) or chosen with the platform's picker (where
 * the bridge says `canPickFolder`), and checked by the engine as soon as it is given, so a
 * problem shows on this step and goes away once it is fixed.
 */
export function LocalFolderField({
  value,
  onChange,
  check,
}: {
  value: string;
  onChange: (v: string) => void;
  check: Call<[string], CheckLocalFolderResult>;
}) {
  const api = useApi();
  const ids = useId();
  const canPick = api.bridge.canPickFolder === true && typeof api.bridge.pickFolder === 'function';
  const typed = value.trim();
  const { run, reset } = check;
  useEffect(() => {
    reset();
    if (!typed) return;
    const t = setTimeout(() => void run(typed), LOCAL_CHECK_DELAY_MS);
    return () => clearTimeout(t);
  }, [typed, run, reset]);

  const pick = async () => {
    const chosen = await api.bridge.pickFolder?.();
    if (chosen) onChange(chosen);
  };
  const ok = check.result;

  return (
    <div className="field">
      <label htmlFor={`${ids}-local`}>Local folder (absolute path)</label>
      <div className="field-row">
        <input
          id={`${ids}-local`}
          className="grow"
          value={value}
          placeholder="/home/you/Sync"
          spellCheck={false}
          aria-invalid={!!check.error}
          aria-describedby={`${ids}-local-hint`}
          onChange={(e) => onChange(e.target.value)}
        />
        {canPick ? (
          <button type="button" onClick={() => void pick()}>
            Choose…
          </button>
        ) : null}
      </div>
      <p className="hint" id={`${ids}-local-hint`} role="status" data-testid="local-check">
        {check.busy
          ? 'Checking the folder…'
          : ok
            ? `✓ ${ok.path}: ${ok.entries === 0 ? 'empty' : `${ok.entries} ${ok.entries === 1 ? 'item' : 'items'} in it`}.`
            : 'The full path of an existing folder, starting with /.'}
      </p>
      {check.error ? (
        <ErrorBox error={check.error} title="This folder cannot be synced" onRetry={() => void run(typed)} />
      ) : null}
    </div>
  );
}
