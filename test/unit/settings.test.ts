import { describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BW_LIMIT_MAX_KBPS, SettingsSchema, describeSettingsError } from '../../shared/settings.js';
import { validateRequest } from '../../shared/ipc.js';
import { SettingsStore } from '../../electron/engine/config.js';
import { parseDuration } from '../../electron/cli/args.js';

describe('settings schema', () => {
  it('fills defaults', () => {
    const s = SettingsSchema.parse({ pairs: [{ id: 'docs', local: '/home/a/Docs', remote: 'srv:/data/docs' }] });
    expect(s.pairs[0]).toMatchObject({
      direction: 'two-way',
      excludes: [],
      bwLimitKBps: 0,
      compression: 'auto',
      paused: false,
      rescanIntervalSec: 3600,
    });
    expect(s.debounceMs).toBe(20);
    expect(s.remotePollSec).toBe(30);
  });

  it.each([
    [{ pairs: [{ id: 'Bad Id', local: '/a', remote: 'x:/y' }] }, 'pairs.0.id'],
    [{ pairs: [{ id: 'a', local: 'rel', remote: 'x:/y' }] }, 'pairs.0.local'],
    [{ pairs: [{ id: 'a', local: '/a', remote: 'x:/y', bwLimitKBps: -1 }] }, 'pairs.0.bwLimitKBps'],
    [{ pairs: [{ id: 'a', local: '/a', remote: 'x:/y', direction: 'sideways' }] }, 'pairs.0.direction'],
    [{ pairs: [{ id: 'a', local: '/a', remote: 'x:/y', compression: 'zstd' }] }, 'pairs.0.compression'],
    [{ debounceMs: 'soon' }, 'debounceMs'],
    [{ remotePollSec: 1 }, 'remotePollSec'],
    [{ remotePollSec: 2.5 }, 'remotePollSec'],
  ])('names the field of an invalid value (%#)', (input, field) => {
    const r = SettingsSchema.safeParse(input);
    expect(r.success).toBe(false);
    if (!r.success) expect(describeSettingsError(r.error)).toContain(`${field}:`);
  });
});

describe('bandwidth limit', () => {
  const pair = (bwLimitKBps: unknown) => ({ pairs: [{ id: 'a', local: '/a', remote: 'x:/y', bwLimitKBps }] });

  it('takes 0 (no limit) to BW_LIMIT_MAX_KBPS', () => {
    for (const v of [0, 1, 500, BW_LIMIT_MAX_KBPS]) {
      expect(SettingsSchema.parse(pair(v)).pairs[0]!.bwLimitKBps).toBe(v);
    }
  });

  it.each([BW_LIMIT_MAX_KBPS + 1, 1e20, -1, 2.5, '100'])('refuses %j and says the allowed range', (v) => {
    const r = SettingsSchema.safeParse(pair(v));
    expect(r.success).toBe(false);
    if (!r.success) {
      expect(describeSettingsError(r.error)).toBe(
        `pairs.0.bwLimitKBps: must be a whole number of KiB/s from 0 (no limit) to ${BW_LIMIT_MAX_KBPS} (about 1 TB/s)`,
      );
    }
  });

  it('the API refuses a limit out of range in add and update, naming the field and the range', () => {
    for (const [method, params] of [
      ['add', { local: '/a', remote: 'h:/b', bwLimitKBps: BW_LIMIT_MAX_KBPS + 1 }],
      ['update', { pair: 'a', patch: { bwLimitKBps: 1e20 } }],
    ] as const) {
      const r = validateRequest(method, params);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(r.error.kind).toBe('invalid-settings');
        expect(r.error.message).toMatch(
          /bwLimitKBps: must be a whole number of KiB\/s from 0 \(no limit\) to 1000000000/,
        );
      }
    }
    expect(validateRequest('update', { pair: 'a', patch: { bwLimitKBps: BW_LIMIT_MAX_KBPS } }).ok).toBe(true);
  });

  it("this machine's rsync accepts the largest limit", () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-bw-'));
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'f'), 'data');
    const r = spawnSync('rsync', ['-r', `--bwlimit=${BW_LIMIT_MAX_KBPS}`, `${dir}/src/`, `${dir}/dst/`], {
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(join(dir, 'dst', 'f'), 'utf8')).toBe('data');
    rmSync(dir, { recursive: true });
  });
});

describe('SettingsStore (conf)', () => {
  it('writes valid settings and refuses invalid ones without writing', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-conf-'));
    const store = new SettingsStore(dir);
    const s = store.read();
    expect(s.pairs).toEqual([]);
    store.write({ ...s, pairs: [SettingsSchema.shape.pairs.parse([{ id: 'a', local: '/a', remote: 'h:/r' }])[0]!] });
    const before = readFileSync(store.path, 'utf8');
    expect(JSON.parse(before).pairs[0].id).toBe('a');
    expect(() => store.updatePair('a', { bwLimitKBps: -3 })).toThrow(/bwLimitKBps/);
    expect(readFileSync(store.path, 'utf8')).toBe(before);
    expect(() => store.updatePair('zzz', { paused: true })).toThrow(/no folder pair "zzz"/);
  });

  it('reports a hand-broken file with the field name', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-conf-'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ version: 1, pairs: [{ id: 'a', local: '/a', remote: 'h:/r', paused: 'yes' }] }),
    );
    expect(() => new SettingsStore(dir).read()).toThrow(/paused/);
  });

  it('writes the file as conf does (tab-indented JSON, mode 0600) by an atomic rename, leaving no temporary file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-conf-'));
    const store = new SettingsStore(dir);
    store.write({ ...store.read(), trashDays: 9 });
    const text = readFileSync(store.path, 'utf8');
    expect(text).toBe(JSON.stringify(JSON.parse(text), undefined, '\t'));
    expect(JSON.parse(text).trashDays).toBe(9);
    expect(statSync(store.path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['config.json']);
  });

  it('names the file when it is not JSON, as it is opened', () => {
    const dir = mkdtempSync(join(tmpdir(), 'lipsync-conf-'));
    writeFileSync(join(dir, 'config.json'), '{"version": 1, "pairs": [');
    expect(() => new SettingsStore(dir)).toThrow(/settings file in .* is not valid/);
  });
});

describe('parseDuration', () => {
  it.each([
    ['30m', 30 * 60_000],
    ['1h', 3_600_000],
    ['90s', 90_000],
    ['2d', 2 * 86_400_000],
    ['1h30m', 90 * 60_000],
  ])('%s', (s, ms) => expect(parseDuration(s)).toBe(ms));
  it('refuses nonsense', () => expect(() => parseDuration('soon')).toThrow(/not a duration/));
  it('refuses a bare number: it has no unit', () => expect(() => parseDuration('15')).toThrow(/needs a unit/));
});
