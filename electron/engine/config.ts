import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import {
  SettingsSchema,
  PairSettingsSchema,
  describeSettingsError,
  type Settings,
  type PairSettings,
} from '../../shared/settings.js';
import { LipsyncError } from './errors.js';

/**
 * The settings file (config.json in the config dir), validated with the zod
 * schema in shared/ on every read and before every write; an invalid value is
 * refused with a message naming the field and nothing is written. The file is
 * what `conf` (the library electron-store is built on) reads and writes, and
 * the desktop shell opens it with electron-store (electron/main/logic/stores.ts):
 * JSON indented with tabs, mode 0600, replaced whole by an atomic rename. The
 * engine does not load conf itself: conf's JSON-schema validator (ajv) took
 * ~150 ms of every CLI command's and the daemon's start, and the zod schema
 * already checks every read and write.
 */
export class SettingsStore {
  readonly path: string;

  constructor(private readonly configDir: string) {
    this.path = join(configDir, 'config.json');
    this.load(); // a file that is not JSON is reported now, as the store is opened
  }

  /** The file's JSON ({} when there is no file yet). */
  private load(): unknown {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
      throw new LipsyncError(
        'invalid-settings',
        `The settings file ${this.path} cannot be read: ${(e as Error).message}`,
        {
          fix: `Check the permissions of ${this.path}.`,
        },
      );
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (e) {
      throw new LipsyncError(
        'invalid-settings',
        `The settings file in ${this.configDir} is not valid: ${(e as Error).message}`,
        { fix: `Fix or remove ${this.path}.` },
      );
    }
  }

  /** Writes the file whole: a temporary file next to it, fsynced, renamed over it. */
  private save(data: Settings): void {
    mkdirSync(this.configDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
    try {
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, JSON.stringify(data, undefined, '\t'));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, this.path);
    } catch (e) {
      rmSync(tmp, { force: true });
      const full = (e as NodeJS.ErrnoException).code === 'ENOSPC';
      throw new LipsyncError(
        full ? 'disk-full' : 'invalid-settings',
        `Can't write the settings file ${this.path}: ${(e as Error).message}`,
        {
          fix: `Check that ${this.configDir} is writable and the disk is not full; the settings were not changed.`,
        },
      );
    }
  }

  /** The whole settings object, validated (defaults filled in). */
  read(): Settings {
    const r = SettingsSchema.safeParse(this.load());
    if (!r.success) {
      throw new LipsyncError(
        'invalid-settings',
        `Settings file ${this.path} is invalid:\n${describeSettingsError(r.error)}`,
        {
          fix: `Correct the field named above in ${this.path}.`,
        },
      );
    }
    return r.data;
  }

  /** Validate and write the whole settings object (nothing is written if it is invalid). */
  write(next: Settings): Settings {
    const r = SettingsSchema.safeParse(next);
    if (!r.success) {
      throw new LipsyncError('invalid-settings', `Invalid settings:\n${describeSettingsError(r.error)}`);
    }
    this.save(r.data);
    return r.data;
  }

  pairs(): PairSettings[] {
    return this.read().pairs;
  }

  pair(id: string): PairSettings | undefined {
    return this.pairs().find((p) => p.id === id);
  }

  /** Apply a change to one pair, validated. */
  updatePair(id: string, patch: Partial<PairSettings>): PairSettings {
    const s = this.read();
    const i = s.pairs.findIndex((p) => p.id === id);
    if (i < 0)
      throw new LipsyncError('pair-unknown', `There is no folder pair "${id}".`, { fix: 'See `lipsync list`.' });
    const r = PairSettingsSchema.safeParse({ ...s.pairs[i], ...patch });
    if (!r.success)
      throw new LipsyncError('invalid-settings', `Invalid settings for pair ${id}:\n${describeSettingsError(r.error)}`);
    s.pairs[i] = r.data;
    this.write(s);
    return r.data;
  }
}
