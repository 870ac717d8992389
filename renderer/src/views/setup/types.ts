/** The server the wizard connects to, as the user gave it (`user` may be empty: ssh's default). */
export interface ServerTarget {
  host: string;
  port: number;
  user: string;
}

/** A server another pair already syncs with (the "Add folder" shortcut). */
export interface KnownServer extends ServerTarget {
  identityFile?: string;
}

/** The params every ssh-using call of the wizard shares. */
export function targetParams(s: ServerTarget, identityFile?: string) {
  return {
    host: s.host,
    port: s.port,
    ...(s.user ? { user: s.user } : {}),
    ...(identityFile ? { identityFile } : {}),
  };
}

/** What the Folders step chose, handed to the First sync step. */
export interface FolderChoice {
  remotePath: string;
  /** The remote folder is new (created by `add`): it is empty. */
  createRemote: boolean;
  /** The local folder's real path, as checked by the engine. */
  local: string;
  /** How many names the local folder holds (0: empty). */
  localEntries: number;
}
