import { useEffect, useState } from 'react';
import type { PairSettings } from '../../../../shared/settings.js';
import type { InitialSyncMode, PreviewInitialSyncResult } from '../../api.js';
import { ErrorBox } from '../../components.js';
import { useApi } from '../../context.js';
import { remoteSpec } from '../../format.js';
import { InitialSyncChoice } from './InitialSyncChoice.js';
import { plural } from './plural.js';
import type { FolderChoice, ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/** Which side is empty, if one is: then there is nothing to choose, files are only copied. */
export function emptySide(c: FolderChoice, p: PreviewInitialSyncResult | null): 'local' | 'remote' | null {
  if (c.localEntries === 0) return 'local';
  if (c.createRemote) return 'remote';
  if (!p || p.truncated) return null;
  if (p.localOnly + p.different + p.same === 0) return 'local';
  if (p.remoteOnly + p.different + p.same === 0) return 'remote';
  return null;
}

/**
 * Step 4: what the first sync does. Both folders are compared (the engine's preview); the
 * merge / take-server / take-local choice is asked only when both sides hold files.
 */
export function FirstSyncStep({
  server,
  identityFile,
  folders,
  onBack,
  onAdded,
}: {
  server: ServerTarget;
  identityFile: string | undefined;
  folders: FolderChoice;
  onBack: () => void;
  onAdded: (p: PairSettings) => void;
}) {
  const api = useApi();
  const [mode, setMode] = useState<InitialSyncMode>('merge');
  const remote = remoteSpec(server.user, server.host, server.port, folders.remotePath);
  const id = identityFile ? { identityFile } : {};
  const preview = useCall(() => api.call('previewInitialSync', { local: folders.local, remote, ...id }));
  const add = useCall((initialSync: InitialSyncMode) =>
    api.call('add', {
      local: folders.local,
      remote,
      direction: 'two-way',
      initialSync,
      ...id,
      ...(folders.createRemote ? { createRemote: true } : {}),
    }),
  );
  const runPreview = preview.run;
  useEffect(() => {
    void runPreview();
  }, [runPreview]);

  const p = preview.result;
  const empty = emptySide(folders, p);
  const finish = async () => {
    const r = await add.run(empty ? 'merge' : mode);
    if (r) onAdded(r);
  };

  return (
    <div className="card">
      <h3>First sync</h3>
      <p>
        <code>{folders.local}</code> ⇄ <code>{remote}</code>
      </p>
      {empty ? (
        <p data-testid="first-sync-empty">
          {empty === 'local'
            ? `The folder on this computer is empty: the first sync copies ${p ? plural(p.remoteOnly, 'file') : 'the files'} from the server here. Nothing to choose.`
            : `The folder on the server is ${folders.createRemote ? 'new' : 'empty'}: the first sync copies ${p ? plural(p.localOnly, 'file') : 'the files'} from this computer there. Nothing to choose.`}
        </p>
      ) : (
        <InitialSyncChoice mode={mode} onMode={setMode} preview={p} />
      )}
      <p className="muted small" role="status" data-testid="preview-summary">
        {p
          ? `${plural(p.localOnly, 'file')} only here, ${p.remoteOnly} only on the server (copied both ways in every case); ${p.same} the same on both sides, ${p.different} different.${p.truncated ? ' (Stopped counting early: there may be more.)' : ''}`
          : preview.error
            ? `Could not compare the two folders: ${preview.error.message}`
            : 'Comparing the two folders…'}
      </p>
      {add.error ? <ErrorBox error={add.error} title="Could not add the folder" /> : null}
      <div className="actions">
        <button type="button" className="primary" onClick={() => void finish()} disabled={add.busy}>
          {add.busy ? 'Setting up…' : 'Finish'}
        </button>
        <button type="button" onClick={onBack} disabled={add.busy}>
          Back
        </button>
      </div>
    </div>
  );
}
