/**
 * The patterns every pair excludes before the user's own (gitignore syntax). The user's
 * patterns may negate all but `.lipsync/` (the engine's own folder, excluded at any depth).
 * Shown read-only in the UI's folder settings. Only shared/ imports (the renderer's bundle has no zod).
 */
import { META_DIR } from './layout.js';

export const BUILTIN_EXCLUDES: readonly string[] = ['.DS_Store', 'Thumbs.db', '*.swp', '~$*', `${META_DIR}/`];
