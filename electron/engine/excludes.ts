/**
 * Exclude patterns (gitignore syntax) for a pair: the built-in ones plus the user's.
 */
import ignore, { type Ignore } from 'ignore';
import type { Excluder } from './types.js';
import { BUILTIN_EXCLUDES } from '../../shared/excludes.js';
import { inAnyMetaDir } from '../../shared/layout.js';

/** Always excluded (shared/excludes.ts); the user's patterns come after these and may negate all but `.lipsync/`. */
export { BUILTIN_EXCLUDES };

/**
 * `ignore` caches the result of every path it was asked about (and of their parent
 * directories) for the lifetime of the instance. On a tree of a million files that
 * cache would hold the whole tree, so the instance is replaced (sharing the compiled
 * rules) every this many lookups.
 */
const CACHE_ROTATE_EVERY = 20_000;

function newIgnore(): Ignore {
  // Case-sensitive like git on Linux (core.ignorecase=false): the synced trees live on
  // case-sensitive file systems, where `Build/` and `build/` are different directories.
  return ignore({ ignorecase: false });
}

/**
 * Builds the excluder for a pair. `patterns` are gitignore lines (blank lines and `#`
 * comments are allowed); they are applied after the built-ins, so `!Thumbs.db` re-includes
 * that file, but nothing re-includes `.lipsync/`.
 */
export function createExcluder(patterns: string[]): Excluder {
  const rules = newIgnore().add([...BUILTIN_EXCLUDES, ...patterns]);
  let current = newIgnore().add(rules);
  let lookups = 0;
  const rsync = gitignoreToRsync([...BUILTIN_EXCLUDES, ...patterns]);
  return {
    rsyncRules: () => rsync,
    ignores(relPath: string, isDir: boolean): boolean {
      if (relPath === '') return false;
      // The engine's own folder: excluded at any depth, whatever the user's patterns say.
      if (inAnyMetaDir(relPath, isDir)) return true;
      if (++lookups >= CACHE_ROTATE_EVERY) {
        lookups = 0;
        current = newIgnore().add(rules);
      }
      // A trailing slash tells `ignore` it is a directory, so `build/` matches only dirs.
      return current.ignores(isDir ? relPath + '/' : relPath);
    },
  };
}

/** Whether the string ends with an odd number of backslashes (an escape with nothing to escape). */
function endsWithLoneBackslash(s: string): boolean {
  let n = 0;
  while (n < s.length && s[s.length - 1 - n] === '\\') n++;
  return n % 2 === 1;
}

/**
 * Checks user exclude patterns, one gitignore line per element.
 * Returns a message naming the first invalid line, or null when all are valid.
 */
export function validateExcludePatterns(patterns: string[]): string | null {
  for (let i = 0; i < patterns.length; i++) {
    const raw = patterns[i];
    const where = `Exclude pattern ${i + 1}`;
    if (typeof raw !== 'string') return `${where} is not a string.`;
    if (raw.includes('\0')) return `${where} contains a NUL character.`;
    if (/[\r\n]/.test(raw)) return `${where} spans several lines; give one pattern per line.`;
    // Git strips trailing spaces unless escaped with a backslash.
    let line = raw;
    while (line.endsWith(' ') && !endsWithLoneBackslash(line.slice(0, -1))) line = line.slice(0, -1);
    if (line === '' || line.startsWith('#')) continue; // blank line or comment
    if (endsWithLoneBackslash(line))
      return `${where} ("${raw}") ends with a lone backslash, which git treats as invalid.`;
    const body = line.startsWith('!') ? line.slice(1) : line;
    if (body === '') return `${where} ("${raw}") is a negation of nothing.`;
    if (body === '/') return `${where} ("${raw}") matches nothing.`;
    try {
      // Rules compile lazily: test a file and a directory to force the regexes to be built.
      const ig = newIgnore().add(line);
      ig.ignores('x');
      ig.ignores('x/');
      ig.ignores('x/y');
    } catch (err) {
      return `${where} ("${raw}") is invalid: ${err instanceof Error ? err.message : String(err)}`;
    }
  }
  return null;
}

/**
 * gitignore lines as rsync --exclude patterns with the same meaning, for the subset
 * where the two agree exactly; null when any line is outside it.
 *
 * Both match `*` and `?` within one path component, a trailing `/` only against
 * folders, and a pattern without a slash against the name at any depth; an excluded
 * folder's contents are excluded with it in both. They differ on a pattern with a
 * slash inside it: gitignore anchors it at the root, rsync matches it at any depth
 * unless it starts with `/`, so it gets one. Not translated (null): negation (`!`,
 * which also works differently: gitignore's last match wins, rsync's first), `**`,
 * character classes (`[`), backslash escapes, and lines rsync would read as a rule
 * prefix (`+ `, `- `).
 */
export function gitignoreToRsync(lines: readonly string[]): string[] | null {
  const out: string[] = [];
  for (const raw of lines) {
    if (raw.includes('\\')) return null;
    const line = raw.replace(/ +$/, '');
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('!') || line.includes('**') || line.includes('[')) return null;
    if (/^[+-][ ,_]/.test(line)) return null;
    const dirOnly = line.endsWith('/');
    let body = dirOnly ? line.slice(0, -1) : line;
    if (body === '' || body.endsWith('/')) return null;
    const anchored = body.includes('/');
    if (body.startsWith('/')) body = body.slice(1);
    if (body === '') return null;
    out.push(`${anchored ? '/' : ''}${body}${dirOnly ? '/' : ''}`);
  }
  return out;
}

/**
 * Whether a path (root-relative) must not be reported or synced: a `.lipsync` state
 * folder or anything in one (at any depth, like the built-in excludes; a path named
 * `.lipsync` whatever its kind), or an excluded path or one inside an excluded folder
 * (each ancestor is checked as a folder, so an Excluder needn't handle parents
 * itself). Used by the watchers (local and remote), the remote listing and the cycle.
 */
export function isIgnoredPath(rel: string, isDir: boolean, excluder?: Excluder): boolean {
  if (rel === '') return false;
  if (inAnyMetaDir(rel)) return true;
  if (!excluder) return false;
  let slash = rel.indexOf('/');
  while (slash !== -1) {
    if (excluder.ignores(rel.slice(0, slash), true)) return true;
    slash = rel.indexOf('/', slash + 1);
  }
  return excluder.ignores(rel, isDir);
}
