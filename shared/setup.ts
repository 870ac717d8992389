import { z } from 'zod';
import type { ErrorInfo } from './errors.js';

/**
 * The first-run setup wizard's requests (engine side: electron/engine/setup/):
 * server host/port/user → test the connection → trust the host key → an SSH
 * key (existing or generated) installed with a password typed once → pick
 * the remote folder. Schemas validate what crosses the API; the result
 * types are what the engine returns.
 */

const host = z.string().min(1);
const port = z.number().int().min(1).max(65535);

export const TestConnectionParamsSchema = z.object({
  /** A host name, an address, or a Host alias from the user's ~/.ssh/config. */
  host,
  port: port.optional(),
  user: z.string().min(1).optional(),
  /** The private key to log in with; default: whatever ssh would pick. */
  identityFile: z.string().optional(),
});
export type TestConnectionParams = z.infer<typeof TestConnectionParamsSchema>;

export interface HostKeyInfo {
  /** Key type as `ssh-keygen -l` shows it: 'ED25519', 'ECDSA', 'RSA'... */
  type: string;
  /** 'SHA256:…', as `ssh-keygen -l` prints it (and ssh shows it when it asks). */
  fingerprint: string;
  /**
   * known: the computer already trusts this key for this host.
   * unknown: never seen; show the fingerprint and ask (trustHostKey).
   * changed: the host has a DIFFERENT trusted key: a hard stop, never trusted automatically.
   */
  status: 'known' | 'unknown' | 'changed';
}

export interface TestConnectionResult {
  /** The server's SSH service answered. */
  reachable: boolean;
  /** The server's host key (ed25519 preferred); null when unreachable. */
  hostKey: HostKeyInfo | null;
  /**
   * ok: a key login worked (BatchMode). needs-key: the server refused our keys
   * (Permission denied): go to the key step. failed: the login failed for another
   * reason (see error). not-tried: the host key is not trusted (yet).
   */
  auth: 'ok' | 'needs-key' | 'failed' | 'not-tried';
  /** The server's rsync version ('3.2.7'), null when unknown or rsync is missing there. */
  rsyncVersion: string | null;
  /** Why it is not a success: unreachable, changed host key (hard stop), failed login. */
  error?: ErrorInfo;
}

export const TrustHostKeyParamsSchema = z.object({
  host,
  port: port.optional(),
  /** The fingerprint the user saw and accepted (HostKeyInfo.fingerprint). */
  fingerprint: z.string().min(1),
});
export type TrustHostKeyParams = z.infer<typeof TrustHostKeyParamsSchema>;

export interface SshKeyInfo {
  /** The private key file. */
  path: string;
  /** The public key line (`ssh-ed25519 AAAA… comment`). */
  publicKey: string;
  /** As `ssh-keygen -l` shows it: 'ED25519', 'RSA'... */
  type: string;
  fingerprint: string;
  comment: string;
}

export const ListKeysParamsSchema = z.object({});
export type ListKeysParams = z.infer<typeof ListKeysParamsSchema>;

export const GenerateKeyParamsSchema = z.object({
  /**
   * Default `<sshDir>/id_ed25519_lipsync`; a file name (or relative path) is taken inside
   * sshDir, and an absolute path must lie inside it. Never overwritten.
   */
  path: z
    .string()
    .min(1, 'must be a file name, such as id_ed25519_lipsync')
    // eslint-disable-next-line no-control-regex
    .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must be a file name without control characters')
    .optional(),
  /** Default `lipsync@<this computer's host name>`. */
  comment: z.string().optional(),
});
export type GenerateKeyParams = z.infer<typeof GenerateKeyParamsSchema>;

export const InstallKeyParamsSchema = z.object({
  host,
  port: port.optional(),
  user: z.string().min(1),
  /** Used once for this login; never stored, logged or put on a command line. */
  password: z.string().min(1),
  /** The `.pub` file to add to the server's ~/.ssh/authorized_keys. */
  publicKeyPath: z.string().min(1),
});
export type InstallKeyParams = z.infer<typeof InstallKeyParamsSchema>;

export const BrowseRemoteParamsSchema = z.object({
  host,
  port: port.optional(),
  user: z.string().min(1).optional(),
  identityFile: z.string().optional(),
  /** Absolute, `~`, `~/…`, or relative to the home directory. */
  path: z.string().default('~'),
});
export type BrowseRemoteParams = z.infer<typeof BrowseRemoteParamsSchema>;
export type BrowseRemoteInput = z.input<typeof BrowseRemoteParamsSchema>;

export interface BrowseRemoteResult {
  /** The absolute path that was listed (`~` resolved). */
  path: string;
  /** Names of its subdirectories (symlinks to directories included), sorted; hidden ('.'-prefixed) names are left out. */
  dirs: string[];
}

/** A path a person typed: one line, absolute or `~/…` (checked again, with a fix, by the engine). */
const typedPath = z
  .string()
  .min(1, 'must be a path, such as /home/you/Sync')
  .max(4096)
  // eslint-disable-next-line no-control-regex
  .refine((p) => !/[\x00-\x1f\x7f]/.test(p), 'must be one line without control characters');

export const ReadKeyParamsSchema = z.object({
  /** Any private key file (or its `.pub`), anywhere: absolute or `~/…`. */
  path: typedPath,
});
export type ReadKeyParams = z.infer<typeof ReadKeyParamsSchema>;

export const CheckLocalFolderParamsSchema = z.object({
  /** The folder on this computer the wizard would sync: absolute or `~/…`. */
  path: typedPath,
});
export type CheckLocalFolderParams = z.infer<typeof CheckLocalFolderParamsSchema>;

export interface CheckLocalFolderResult {
  /** The folder's real path (symlinks resolved): what `add` will store. */
  path: string;
  /** How many names it holds (`.lipsync` not counted): 0 means empty. */
  entries: number;
}

/** Every setup request's params schema, by request name. */
export const SetupParamSchemas = {
  testConnection: TestConnectionParamsSchema,
  trustHostKey: TrustHostKeyParamsSchema,
  listKeys: ListKeysParamsSchema,
  generateKey: GenerateKeyParamsSchema,
  installKey: InstallKeyParamsSchema,
  browseRemote: BrowseRemoteParamsSchema,
  readKey: ReadKeyParamsSchema,
  checkLocalFolder: CheckLocalFolderParamsSchema,
} as const;

export interface SetupResults {
  testConnection: TestConnectionResult;
  trustHostKey: { trusted: true };
  listKeys: SshKeyInfo[];
  generateKey: SshKeyInfo;
  installKey: { installed: true };
  browseRemote: BrowseRemoteResult;
  readKey: SshKeyInfo;
  checkLocalFolder: CheckLocalFolderResult;
}
