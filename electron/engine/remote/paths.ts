/**
 * Paths on a remote root: absolute roots and root-relative paths checked and
 * normalised, joined, and escaped for find's -path and for rsync source paths.
 */

import { posix } from 'node:path';
import { LipsyncError } from '../errors.js';

/** Checks and normalises an absolute root: starts with '/', no '.', '..', '//' or trailing slash. */
export function normalizeRoot(root: string): string {
  if (!root.startsWith('/') || root.includes('\0')) {
    throw new LipsyncError('invalid-remote', `The remote root ${JSON.stringify(root)} is not an absolute path.`);
  }
  const n = posix.normalize(root);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/**
 * Checks and normalises a path relative to the root: not empty, not absolute,
 * no '.' or '..' component, no NUL. Trailing and doubled slashes are dropped.
 */
export function normalizeRelPath(p: string): string {
  const parts = p.split('/').filter((x) => x !== '');
  if (p.includes('\0') || p.startsWith('/') || parts.length === 0 || parts.some((x) => x === '.' || x === '..')) {
    throw new LipsyncError('unknown', `Invalid relative path ${JSON.stringify(p)}.`, {
      detail: 'paths inside a pair must be relative, without . or .. components',
    });
  }
  return parts.join('/');
}

/** A relative path ('' = the root) checked and normalised. */
export function normalizeRel(rel: string): string {
  return rel === '' ? '' : normalizeRelPath(rel);
}

/** The absolute path of `rel` ('' = the root itself) under an absolute root. */
export function absPath(root: string, rel: string): string {
  if (rel === '') return root;
  return root === '/' ? `/${rel}` : `${root}/${rel}`;
}

/** Escapes fnmatch() wildcards so a literal path can be used with `find -path`. */
export function globEscape(s: string): string {
  return s.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

/**
 * A remote SOURCE path for rsync -s: the server's rsync expands wildcards in
 * it (`[ab]` would list the folder `a`). When the path holds `*`, `?` or `[`,
 * every wildcard character and backslash is escaped with a backslash; a path
 * without them is taken literally (backslashes included), so it is left as is.
 */
export function rsyncSourcePath(p: string): string {
  return /[*?[]/.test(p) ? globEscape(p) : p;
}
