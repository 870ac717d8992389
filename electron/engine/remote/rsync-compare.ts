/**
 * Whether listed paths have the same content on both sides, by rsync alone:
 * a dry run with --checksum (rsyncCompareArgs in rsync-args.ts), so only
 * checksums cross the network.
 */

import { resolve } from 'node:path';
import type { RemoteSpec, SshOptions } from '../types.js';
import { LipsyncError, classifyFailure, rsyncErrorFiles } from '../errors.js';
import { LineReader } from '../proc/split.js';
import { isMetaPath } from '../../../shared/layout.js';
import { normalizeRelPath } from './paths.js';
import { failureContext } from './script.js';
import { parseItemLine } from './progress.js';
import { rsyncCompareArgs } from './rsync-args.js';
import { relativize, rsyncRun } from './rsync-run.js';

export interface SameContentOptions {
  localRoot: string;
  remote: RemoteSpec;
  ssh: SshOptions;
  /** Relative paths to compare (normally files present on both sides). */
  paths: string[];
  signal?: AbortSignal;
}

/**
 * Whether listed paths have the same CONTENT on both sides, by rsync alone: a
 * dry run (`-n`) in the push direction with `--checksum`, so each side hashes
 * its own files and only checksums cross the network. Without -t/-p, equal
 * content with different mtimes or modes is not itemized; any itemization
 * other than '.' (attributes only) means different: '>f' (content or size
 * differs, or missing remotely), '*deleting' (missing locally), 'cL' (symlink
 * target differs), 'cd'/'>f+++' over another type.
 *
 * Result, for every listed path (keys as given): true = same content; false =
 * different, missing on one side, unreadable (rsync error naming it), or an
 * invalid/.lipsync path. Two directories count as same (not recursed); a path
 * absent on both sides counts as same. Rejects with a LipsyncError when rsync
 * fails as a whole (unreachable, auth...), or on exit 23/24 without naming files.
 */
export async function rsyncSameContent(o: SameContentOptions): Promise<Map<string, boolean>> {
  const result = new Map<string, boolean>();
  const wanted = new Map<string, string[]>();
  for (const p of o.paths) {
    let rel: string;
    try {
      rel = normalizeRelPath(p);
    } catch {
      result.set(p, false);
      continue;
    }
    if (isMetaPath(rel)) {
      result.set(p, false);
      continue;
    }
    const originals = wanted.get(rel);
    if (originals) originals.push(p);
    else wanted.set(rel, [p]);
  }
  if (wanted.size === 0) return result;
  if (o.signal?.aborted) throw new LipsyncError('cancelled', 'The comparison was cancelled.');

  const different = new Set<string>();
  const splitter = new LineReader((line) => {
    const item = parseItemLine(line);
    if (item && wanted.has(item.path) && !item.itemize.startsWith('.')) different.add(item.path);
  });
  const list = Buffer.from([...wanted.keys()].map((rel) => `./${rel}\0`).join(''), 'utf8');
  const r = await rsyncRun(rsyncCompareArgs(o), {
    input: list,
    onStdout: (c) => splitter.push(c),
    ...(o.signal ? { signal: o.signal } : {}),
  });
  splitter.end();
  if (o.signal?.aborted) throw new LipsyncError('cancelled', 'The comparison was cancelled.', { detail: r.stderr });
  if (r.code !== 0) {
    const roots = [resolve(o.localRoot), o.remote.path];
    const named = r.code === 23 || r.code === 24 ? (relativize(rsyncErrorFiles(r.stderr), roots) ?? []) : [];
    if (named.length === 0) throw classifyFailure('rsync', r.code, r.stderr, failureContext(o.remote, o.ssh));
    for (const f of named) different.add(f.replace(/^(\.\/)+/, '').replace(/\/+$/, ''));
  }
  for (const [rel, originals] of wanted) for (const p of originals) result.set(p, !different.has(rel));
  return result;
}
