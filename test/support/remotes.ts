/**
 * The per-remote-kind fixture of the integration tests: a local-path remote, or an
 * ssh remote over the harness sshd (same machine, so the remote directory can be
 * prepared and inspected directly).
 */
import { afterAll, beforeAll } from 'vitest';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, startSshd, type SshServer } from '../harness/sshd.js';
import { closeMaster } from '../../electron/engine/remote/ssh.js';
import type { RemoteSpec, SshOptions } from '../../electron/engine/types.js';

export type RemoteKind = 'local' | 'ssh';
export const REMOTE_KINDS = ['local', 'ssh'] as const;

export interface RemoteFixture {
  readonly kind: RemoteKind;
  /** A fresh temp dir for this describe block (set in beforeAll, removed in afterAll). */
  readonly base: string;
  /** The ssh options (controlDir in `base`; the harness config file for an ssh remote). Filled in beforeAll. */
  readonly ssh: SshOptions;
  /** The harness sshd, for an ssh remote. */
  readonly server: SshServer | undefined;
  /** The remote spec of `path` for this kind. */
  spec(path: string): RemoteSpec;
  /** 1, 2, 3, ...: a new number per call, for unique dir names. */
  next(): number;
}

export interface RemoteFixtureOptions {
  /** Prefix of the temp dir. */
  tempPrefix: string;
  /** Ends the ssh connection before the sshd stops; closeMaster on the harness alias by default. */
  closeSsh?: (server: SshServer, ssh: SshOptions) => Promise<void>;
  /** Runs last in afterAll (after the temp dir is removed), e.g. checks that nothing was executed. */
  afterCleanup?: () => void;
}

export function specFor(kind: RemoteKind, path: string): RemoteSpec {
  return kind === 'ssh' ? { kind: 'ssh', host: 'lipsync-test', path } : { kind: 'local', path };
}

/** Registers beforeAll/afterAll in the current describe block, making a remote of `kind`. */
export function useRemote(kind: RemoteKind, opts: RemoteFixtureOptions): RemoteFixture {
  let server: SshServer | undefined;
  let base = '';
  let n = 0;
  // One object for the whole block, filled in beforeAll, so callers may hold on to it.
  const ssh: SshOptions = { controlDir: '' };

  beforeAll(async () => {
    base = await makeTempDir(opts.tempPrefix);
    ssh.controlDir = join(base, 'ctl');
    if (kind === 'ssh') {
      server = await startSshd();
      ssh.configFile = server.sshConfigFile;
    }
  });

  afterAll(async () => {
    if (server) {
      await (opts.closeSsh ?? ((s, o) => closeMaster({ host: s.alias }, o)))(server, ssh);
      await server.stop();
    }
    if (base) await rm(base, { recursive: true, force: true });
    opts.afterCleanup?.();
  });

  return {
    kind,
    get base() {
      return base;
    },
    ssh,
    get server() {
      return server;
    },
    spec: (path) => specFor(kind, path),
    next: () => ++n,
  };
}
