/**
 * Running the local rsync of a transfer, a comparison or a fetch (rsync.ts,
 * rsync-compare.ts): its environment, its failure to start, and its file names
 * made relative to the pair's roots again.
 */

import { LipsyncError } from '../errors.js';
import { run, type RunOptions, type RunResult } from '../proc/run.js';
import { rootWithSlash } from './rsync-args.js';

function rsyncEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, LC_ALL: 'C' };
  // These would change how arguments reach the remote rsync.
  delete env.RSYNC_OLD_ARGS;
  delete env.RSYNC_PROTECT_ARGS;
  delete env.RSYNC_RSH;
  return env;
}

function startFailure(e: unknown): LipsyncError {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
    return new LipsyncError('rsync-missing-local', 'rsync is not installed on this computer.', {
      fix: 'Install rsync 3.1 or newer, e.g. `sudo apt install rsync`.',
      cause: e,
    });
  }
  return new LipsyncError('unknown', `Could not start rsync: ${(e as Error).message}`, { cause: e });
}

/**
 * Runs rsync with `args` (stdin from `o.input`, stdout to `o.onStdout`, stopped when
 * `o.signal` aborts). Like run(), resolves whatever the exit status; rejects with a
 * LipsyncError only when rsync could not start ('rsync-missing-local' when it is not
 * installed).
 */
export async function rsyncRun(
  args: string[],
  o: Pick<RunOptions, 'input' | 'onStdout' | 'signal'> = {},
): Promise<RunResult> {
  try {
    return await run('rsync', args, { ...o, env: rsyncEnv(), maxBuffer: 256 * 1024 });
  } catch (e) {
    throw startFailure(e);
  }
}

/** Turns rsync's absolute names back into paths relative to the pair roots where possible. */
export function relativize(files: string[] | undefined, roots: string[]): string[] | undefined {
  if (!files) return files;
  return files.map((f) => {
    for (const r of roots) {
      const prefix = rootWithSlash(r);
      if (f.startsWith(prefix)) return f.slice(prefix.length).replace(/^(\.\/)+/, '');
    }
    return f;
  });
}
