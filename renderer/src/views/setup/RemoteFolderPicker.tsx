import { useEffect, useId, useState } from 'react';
import { ErrorBox, Loading } from '../../components.js';
import { useApi } from '../../context.js';
import { joinPath, parentPath } from '../../format.js';
import { targetParams, type ServerTarget } from './types.js';
import { useCall } from './useCall.js';

/** The remote folder: browsed on the server by key login, optionally a new folder inside it. */
export function RemoteFolderPicker({
  server,
  identityFile,
  newFolder,
  onNewFolder,
  onPath,
}: {
  server: ServerTarget;
  identityFile: string | undefined;
  newFolder: string;
  onNewFolder: (name: string) => void;
  /** The listed folder (absolute), once the server answered. */
  onPath: (path: string) => void;
}) {
  const api = useApi();
  const ids = useId();
  const browse = useCall((path: string) => api.call('browseRemote', { ...targetParams(server, identityFile), path }));
  const [path, setPath] = useState<string | null>(null);

  const go = async (to: string) => {
    const r = await browse.run(to);
    if (r) {
      setPath(r.path);
      onPath(r.path);
    }
  };
  const run = browse.run;
  useEffect(() => {
    void run('~').then((r) => {
      if (!r) return;
      setPath(r.path);
      onPath(r.path);
    });
    // Once, on entry (`run` is stable): the home folder.
  }, [run]);

  const name = newFolder.trim();
  const nameValid = validFolderName(name);
  const dirs = browse.result?.dirs ?? (browse.error ? [] : null);
  const selected = path ? (name && nameValid ? joinPath(path, name) : path) : null;

  return (
    <div className="browser" aria-label="Server folders">
      <p className="browse-path">
        <span className="muted">Selected: </span>
        <code data-testid="remote-path">{selected ?? '…'}</code>
      </p>
      {browse.error ? <ErrorBox error={browse.error} title="Cannot list this folder" /> : null}
      {dirs === null ? (
        <Loading what="server folders" />
      ) : (
        <ul className="dir-list" aria-label="Folders">
          {path && path !== '/' ? (
            <li>
              <button type="button" onClick={() => void go(parentPath(path))}>
                ↑ Up to {parentPath(path)}
              </button>
            </li>
          ) : null}
          {dirs.map((d) => (
            <li key={d}>
              <button
                type="button"
                onClick={() => void go(path ? joinPath(path, d) : d)}
                aria-label={`Open folder ${d}`}
              >
                📁 {d}
              </button>
            </li>
          ))}
          {dirs.length === 0 && !browse.error ? <li className="muted">No sub-folders here.</li> : null}
        </ul>
      )}
      <div className="field">
        <label htmlFor={`${ids}-newdir`}>New folder inside (optional)</label>
        <input
          id={`${ids}-newdir`}
          value={newFolder}
          spellCheck={false}
          aria-invalid={!nameValid}
          onChange={(e) => onNewFolder(e.target.value)}
        />
        {!nameValid ? <p className="field-error">A folder name cannot contain “/”.</p> : null}
      </div>
    </div>
  );
}

/** A new folder's name: one path component. */
export function validFolderName(name: string): boolean {
  const n = name.trim();
  return n === '' || /^[^/\0]+$/.test(n);
}
