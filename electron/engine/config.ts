import Conf from 'conf';
import { z } from 'zod';
import {
  SettingsSchema,
  PairSettingsSchema,
  describeSettingsError,
  type Settings,
  type PairSettings,
} from '../../shared/settings.js';
import { LipsyncError } from './errors.js';

/**
 * The settings file (config.json in the config dir), read and written through
 * `conf`, the library electron-store is built on, with a JSON schema derived
 * from the zod schema in shared/. Every write is validated first; an invalid
 * value is refused with a message naming the field and nothing is written.
 */
export class SettingsStore {
  private readonly conf: Conf<Settings>;

  constructor(configDir: string) {
    const json = z.toJSONSchema(SettingsSchema, { io: 'input' }) as { properties: Record<string, unknown> };
    try {
      this.conf = new Conf<Settings>({
        projectName: 'lipsync',
        projectSuffix: '',
        cwd: configDir,
        configName: 'config',
        // eslint-disable-next-line @typescript-eslint/no-explicit-any
        schema: json.properties as any,
        configFileMode: 0o600,
        clearInvalidConfig: false,
      });
    } catch (e) {
      throw new LipsyncError(
        'invalid-settings',
        `The settings file in ${configDir} is not valid: ${(e as Error).message}`,
        { fix: `Fix or remove ${configDir}/config.json.` },
      );
    }
  }

  get path(): string {
    return this.conf.path;
  }

  /** The whole settings object, validated (defaults filled in). */
  read(): Settings {
    const r = SettingsSchema.safeParse(this.conf.store);
    if (!r.success) {
      throw new LipsyncError(
        'invalid-settings',
        `Settings file ${this.conf.path} is invalid:\n${describeSettingsError(r.error)}`,
        {
          fix: `Correct the field named above in ${this.conf.path}.`,
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
    this.conf.store = r.data;
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
