/**
 * What changed in the local tree since a moment: one GNU find over the tree,
 * `-newerct @SECONDS` (inode change time: set by every write, chmod, rename,
 * link or unlink in a directory, and by nothing a user can set back).
 *
 * Used after a clean stop instead of comparing every file with the database
 * (docs/sync-semantics.md, "Restart after a clean stop"): the walk is done by
 * find in C, and only what it prints is looked at. A changed directory is
 * compared entry by entry (that finds what was deleted in it or moved out of
 * it); a directory new to the database is walked whole by the caller.
 */
import { join } from 'node:path';
import { DirtySet, type DirtySnapshot } from './dirty.js';
import { NulFieldSplitter } from './proc/split.js';
import { run } from './proc/run.js';
import { globEscape } from './remote/paths.js';
import { META_DIR } from '../../shared/layout.js';

/**
 * Paths under `root` whose ctime is after `sinceMs`, as a dirty snapshot (files
 * as paths, directories as "compare this directory"); null when find is not GNU
 * find or did not read the whole tree (the caller then compares everything).
 */
export async function localChangedSince(root: string, sinceMs: number): Promise<DirtySnapshot | null> {
  const dirty = new DirtySet();
  const splitter = new NulFieldSplitter();
  let pending: string | null = null; // the type of the record whose path comes next
  const args = [
    '-H',
    root,
    '(',
    '-path',
    globEscape(join(root, META_DIR)), // never synced: pruned from the walk
    '-prune',
    ')',
    '-o',
    '-newerct',
    `@${(sinceMs / 1000).toFixed(3)}`,
    '-printf',
    '%y\\0%P\\0',
  ];
  let res;
  try {
    res = await run('find', args, {
      env: { ...process.env, LC_ALL: 'C' },
      timeoutMs: 600_000,
      maxBuffer: 64 * 1024,
      onStdout: (chunk) => {
        for (const field of splitter.push(chunk)) {
          if (pending === null) {
            pending = field;
            continue;
          }
          const type = pending;
          pending = null;
          if (type === 'd') {
            dirty.markDir(field);
            if (field !== '') dirty.addPath(field);
          } else dirty.addPath(field);
        }
      },
    });
  } catch {
    return null; // no find at all
  }
  if (res.code !== 0 || res.timedOut || pending !== null) return null;
  return dirty.take();
}
