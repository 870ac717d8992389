import { useState } from 'react';
import { useApi } from '../../context.js';
import { joinPath } from '../../format.js';
import { LocalFolderField } from './LocalFolderField.js';
import { RemoteFolderPicker, validFolderName } from './RemoteFolderPicker.js';
import type { FolderChoice, ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/** Step 3: the folder on the server and the folder on this computer (checked here, not at Finish). */
export function FoldersStep({
  server,
  identityFile,
  initial,
  onBack,
  onNext,
}: {
  server: ServerTarget;
  identityFile: string | undefined;
  initial: FolderChoice | null;
  onBack: () => void;
  onNext: (c: FolderChoice) => void;
}) {
  const api = useApi();
  const [browsed, setBrowsed] = useState<string | null>(null);
  const [newFolder, setNewFolder] = useState('');
  const [local, setLocal] = useState(initial?.local ?? '');
  const check = useCall((path: string) => api.call('checkLocalFolder', { path }));

  const name = newFolder.trim();
  const remotePath = browsed ? (name ? joinPath(browsed, name) : browsed) : null;
  const ready = !!remotePath && validFolderName(name) && !!local.trim() && !check.error && !check.busy;

  // Checked again on Next: the folder may have changed since (made, removed, moved).
  const next = async () => {
    if (!remotePath) return;
    const r = await check.run(local.trim());
    if (r) onNext({ remotePath, createRemote: !!name, local: r.path, localEntries: r.entries });
  };

  return (
    <div className="card">
      <h3>Folder on {server.host}</h3>
      <RemoteFolderPicker
        server={server}
        identityFile={identityFile}
        newFolder={newFolder}
        onNewFolder={setNewFolder}
        onPath={setBrowsed}
      />
      <h3>Folder on this computer</h3>
      <LocalFolderField value={local} onChange={setLocal} check={check} />
      <div className="actions">
        <button type="button" className="primary" disabled={!ready} onClick={() => void next()}>
          Next
        </button>
        <button type="button" onClick={onBack}>
          Back
        </button>
      </div>
    </div>
  );
}
