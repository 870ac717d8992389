/**
 * The real `lipsync` command: each command accepts only its own options and arguments;
 * anything else is refused with exit code 2, one clear error naming the command's usage,
 * and nothing done (the settings file is untouched). Help comes from the same table.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { cli, makeCliEnv, requireBuild, type CliEnv } from '../support/cli.js';
import { COMMANDS } from '../../electron/cli/commands.js';
import { commandHelp, usageLine, type AnyCommand } from '../../electron/cli/args.js';

const table = COMMANDS as Record<string, AnyCommand>;
const configText = (e: CliEnv) => readFileSync(join(e.configDir, 'config.json'), 'utf8');

async function refused(e: CliEnv, args: string[], message: RegExp, fix?: RegExp) {
  const before = configText(e);
  const r = await cli(e, args);
  expect(r.code, `lipsync ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(message);
  if (fix) expect(r.stderr).toMatch(fix);
  const name = args[0]!;
  if (Object.hasOwn(table, name)) expect(r.stderr).toContain(usageLine(name, table[name]!));
  expect(r.stderr).not.toMatch(/\n\s+at .*:\d+/);
  expect(configText(e)).toBe(before);
  return r;
}

let e: CliEnv;

beforeAll(async () => {
  requireBuild();
  e = makeCliEnv();
  mkdirSync(join(e.dir, 'documents'));
  mkdirSync(join(e.dir, 'server'));
  const r = await cli(e, ['add', join(e.dir, 'documents'), join(e.dir, 'server'), '--id', 'documents']);
  expect(r.code, r.stderr).toBe(0);
});

describe('lipsync refuses what a command does not take, before doing anything', () => {
  it('`pause documents 10m` is an error that suggests --for 10m, and pauses nothing', async () => {
    await refused(e, ['pause', 'documents', '10m'], /unexpected argument "10m"/, /lipsync pause documents --for 10m/);
    const cfg = JSON.parse(configText(e)) as { pairs: { paused: boolean }[] };
    expect(cfg.pairs[0]!.paused).toBe(false);
  });

  it('`pause 10m` (no such pair) suggests pausing all pairs with --for', async () => {
    await refused(e, ['pause', '10m'], /there is no pair "10m"/, /lipsync pause --for 10m/);
  });

  it('--for needs a unit: a bare number is an error that says so', async () => {
    await refused(e, ['pause', 'documents', '--for', '10'], /--for 10: a duration needs a unit/, /10m for minutes/);
  });

  it('--for with a unit pauses for that long', async () => {
    const r = await cli(e, ['pause', 'documents', '--for', '10m']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('Paused: documents for 10m.\n');
    const cfg = JSON.parse(configText(e)) as { pairs: { paused: boolean; pausedUntil: number }[] };
    expect(cfg.pairs[0]!.paused).toBe(true);
    expect(cfg.pairs[0]!.pausedUntil).toBeGreaterThan(Date.now() + 9 * 60_000);
    expect(cfg.pairs[0]!.pausedUntil).toBeLessThanOrEqual(Date.now() + 10 * 60_000);
    expect((await cli(e, ['resume', 'documents'])).code).toBe(0);
  });

  it('`list --keep both` is refused: --keep is an option of resolve', async () => {
    await refused(e, ['list', '--keep', 'both'], /lipsync list: unknown option --keep/, /option of `lipsync resolve`/);
  });

  it.each(Object.keys(table))('%s: an unknown option and a stray argument are refused with its usage', async (name) => {
    await refused(e, [name, '--bogus'], new RegExp(`lipsync ${name}: unknown option --bogus`));
    const s = table[name]!;
    if (s.args.length === 0)
      await refused(
        e,
        [name, 'stray'],
        new RegExp(`lipsync ${name}: unexpected argument "stray" \\(${name} takes no arguments\\)`),
      );
  });

  it('a missing argument, a bad choice, a bad number', async () => {
    await refused(e, ['add', join(e.dir, 'documents')], /lipsync add: missing REMOTE/);
    await refused(e, ['resolve', '1'], /--keep is required/);
    await refused(e, ['resolve', '1', '--keep', 'mine'], /--keep must be local, remote or both/);
    await refused(e, ['log', '--lines', 'many'], /--lines must be a whole number, not "many"/);
    await refused(e, ['run', '--port', '8000'], /--port only applies with --web/, /lipsync run --web --port 8000/);
  });

  it('an unknown command, or help for one', async () => {
    await refused(e, ['frob'], /unknown command "frob"/, /lipsync --help/);
    await refused(e, ['help', 'frob'], /no command "frob"/);
  });
});

describe('global options', () => {
  it('may come before the command', async () => {
    const other = makeCliEnv();
    const viaEnv = await cli(e, ['list']);
    const before = await cli(other, ['--config-dir', e.configDir, '--data-dir=' + e.dataDir, 'list']);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain('documents');
    expect(before.stdout).toBe(viaEnv.stdout);
    const after = await cli(other, ['list', '--config-dir', e.configDir]);
    expect(after.stdout).toBe(viaEnv.stdout);
    await refused(other, ['--config-dir', e.configDir], /no command after --config-dir/, /lipsync --help/);
  });
});

describe('help comes from the same table', () => {
  it.each(Object.keys(table))('lipsync %s --help', async (name) => {
    const r = await cli(e, [name, '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${commandHelp(name, table[name]!)}\n`);
    for (const k of Object.keys(table[name]!.options)) expect(r.stdout).toContain(`--${k}`);
    expect((await cli(e, ['help', name])).stdout).toBe(r.stdout);
  });

  it('lipsync --help lists every command', async () => {
    const r = await cli(e, ['--help']);
    expect(r.code).toBe(0);
    for (const name of Object.keys(table)) expect(r.stdout).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
  });
});
