/**
 * The CLI's one table of commands: every command accepts exactly what its entry lists,
 * and its help (and the README's command table) says exactly that.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import {
  GLOBAL_OPTIONS,
  UsageError,
  commandHelp,
  formatDuration,
  parseCommandLine,
  parseDuration,
  usageLine,
  type AnyCommand,
} from '../../electron/cli/args.js';
import { COMMANDS } from '../../electron/cli/commands.js';
import { USAGE } from '../../electron/cli/main.js';

const table = COMMANDS as Record<string, AnyCommand>;
const names = Object.keys(table);

/** A valid value for each placeholder the table uses. */
const SAMPLE: Record<string, string> = {
  ID: '3',
  DIR: '/tmp/x',
  DIRECTION: 'send-only',
  PATTERN: '*.tmp',
  KIBPS: '500',
  FILE: '/tmp/key',
  SECONDS: '600',
  DURATION: '30m',
  N: '8000',
  PAIR: 'docs',
  'local|remote|both': 'both',
  'auto|on|off': 'on',
  LOCAL: '/tmp/a',
  REMOTE: 'host:/srv/a',
  ACTION: 'status',
  PATH: '/tmp/a/report.txt',
  TEXT: 'report',
};
const sampleArgs = (s: AnyCommand) => s.args.map((a) => SAMPLE[a.name]!);
const required = (s: AnyCommand) =>
  Object.entries(s.options).flatMap(([k, o]) => (o.required ? [`--${k}`, SAMPLE[o.value!]!] : []));

function refusal(name: string, argv: string[]): UsageError {
  try {
    parseCommandLine(name, argv, table);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }
  throw new Error(`lipsync ${name} ${argv.join(' ')} was accepted`);
}

describe('the command table', () => {
  it('every placeholder has a sample (the tests below cover every option)', () => {
    for (const s of Object.values(table)) {
      for (const a of s.args) expect(SAMPLE[a.name], a.name).toBeDefined();
      for (const o of Object.values(s.options)) if (o.kind !== 'flag') expect(SAMPLE[o.value!], o.value).toBeDefined();
    }
  });

  it.each(names)('%s accepts each of its own options, and its help lists each of them', (name) => {
    const s = table[name]!;
    const help = commandHelp(name, s);
    expect(help.startsWith(usageLine(name, s))).toBe(true);
    for (const [k, o] of Object.entries(s.options)) {
      expect(help).toContain(`--${k}`);
      const argv = [...sampleArgs(s), ...required(s)];
      if (!o.required) argv.push(`--${k}`, ...(o.kind === 'flag' ? [] : [SAMPLE[o.value!]!]));
      // `--port` goes with `--web`, `--no-start` with install: what the checks ask for.
      if (k === 'port') argv.push('--web');
      if (k === 'no-start') argv.splice(0, 1, 'install');
      const parsed = parseCommandLine(name, argv, table);
      expect(parsed.opts[k], `${name} --${k}`).toBeDefined();
    }
    for (const k of Object.keys(GLOBAL_OPTIONS)) expect(help).toContain(`--${k}`);
  });

  it.each(names)('%s refuses an option of another command, naming the command and its usage', (name) => {
    const s = table[name]!;
    const foreign = names
      .flatMap((n) => Object.keys(table[n]!.options))
      .find((k) => !Object.hasOwn(s.options, k) && !Object.hasOwn(GLOBAL_OPTIONS, k))!;
    const e = refusal(name, [...sampleArgs(s), ...required(s), `--${foreign}`]);
    expect(e.message).toBe(`lipsync ${name}: unknown option --${foreign}.`);
    expect(e.command).toBe(name);
    expect(e.fix).toMatch(new RegExp(`lipsync ${name} --help`));
    expect(refusal(name, [...sampleArgs(s), ...required(s), '--no-such-option']).message).toMatch(
      /unknown option --no-such-option/,
    );
  });

  it.each(names)('%s refuses a stray argument', (name) => {
    const s = table[name]!;
    const e = refusal(name, [...sampleArgs(s), ...required(s), 'stray']);
    expect(e.message).toMatch(new RegExp(`^lipsync ${name}: unexpected argument "stray"`));
  });

  it.each(names.filter((n) => table[n]!.args.some((a) => !a.optional)))('%s refuses a missing argument', (name) => {
    expect(refusal(name, []).message).toMatch(new RegExp(`^lipsync ${name}: missing [A-Z]+\\.`));
  });

  it('lipsync --help lists every command', () => {
    for (const n of names) expect(USAGE).toMatch(new RegExp(`^  ${n}\\b`, 'm'));
  });

  it("the README's command table names every command and option", () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const start = readme.indexOf('| command | what it does |');
    expect(start).toBeGreaterThan(0);
    const rows = readme.slice(start).split('\n\n')[0]!;
    for (const n of names) {
      expect(rows, n).toContain(`lipsync ${n}`);
      for (const k of Object.keys(table[n]!.options)) expect(rows, `${n} --${k}`).toContain(`--${k}`);
    }
  });
});

describe('values are checked before anything is done', () => {
  it('the example of issue 16: `pause documents 10m` is refused, pointing to --for 10m', () => {
    const e = refusal('pause', ['documents', '10m']);
    expect(e.message).toBe('lipsync pause: unexpected argument "10m".');
    expect(e.fix).toContain('lipsync pause documents --for 10m');
    expect(refusal('pause', ['documents', '10']).fix).toContain('--for 10m');
  });

  it('`list --keep both` is refused: --keep belongs to resolve', () => {
    const e = refusal('list', ['--keep', 'both']);
    expect(e.fix).toMatch(/--keep is an option of `lipsync resolve`, not of `lipsync list`/);
  });

  it('--for needs a unit', () => {
    const e = refusal('pause', ['--for', '10']);
    expect(e.message).toBe('lipsync pause: --for 10: a duration needs a unit.');
    expect(e.fix).toMatch(/10m for minutes, 10h for hours/);
    expect(parseCommandLine('pause', ['docs', '--for', '1h'], table).opts.for).toBe(3_600_000);
    expect(parseCommandLine('pause', ['--for=8h'], table).opts.for).toBe(8 * 3_600_000);
  });

  it.each([
    ['30m', 30 * 60_000],
    ['1h', 3_600_000],
    ['8h', 8 * 3_600_000],
    ['90s', 90_000],
    ['2d', 2 * 86_400_000],
    ['1h30m', 90 * 60_000],
  ])('duration %s', (s, ms) => {
    expect(parseDuration(s)).toBe(ms);
    expect(parseDuration(formatDuration(ms))).toBe(ms);
  });

  it('durations: none, nonsense and too long are refused', () => {
    expect(() => parseDuration('0m')).toThrow(/more than 0/);
    expect(() => parseDuration('soon')).toThrow(/not a duration/);
    expect(() => parseDuration('10 m')).toThrow(/not a duration/);
    // Node's timers hold at most ~24.8 days: a longer pause would end at once.
    expect(() => parseDuration('25d')).toThrow(/at most 24d/);
  });

  it('a value is required, once, and flags take none', () => {
    expect(refusal('pause', ['--for']).message).toBe('lipsync pause: --for needs a value: --for DURATION.');
    expect(refusal('pause', ['--for', '--help']).message).toMatch(/--for needs a value/);
    expect(refusal('pause', ['--for', '1h', '--for', '2h']).message).toMatch(/--for is given twice/);
    expect(refusal('list', ['--json=yes']).message).toMatch(/--json takes no value/);
    // A repeatable option collects each value.
    const add = parseCommandLine('add', ['/a', 'h:/b', '--exclude', '*.tmp', '--exclude=node_modules/'], table);
    expect(add.opts.exclude).toEqual(['*.tmp', 'node_modules/']);
  });

  it('choices, numbers and ranges', () => {
    expect(refusal('add', ['/a', 'h:/b', '--direction', 'sideways']).message).toMatch(
      /--direction must be two-way, send-only or receive-only, not "sideways"/,
    );
    expect(refusal('add', ['/a', 'h:/b', '--bwlimit', '1.5']).message).toMatch(/--bwlimit must be a whole number/);
    expect(refusal('add', ['/a', 'h:/b', '--compress', 'zstd']).message).toMatch(
      /--compress must be auto, on or off, not "zstd"/,
    );
    expect(parseCommandLine('add', ['/a', 'h:/b', '--compress', 'on'], table).opts.compress).toBe('on');
    expect(parseCommandLine('add', ['/a', 'h:/b'], table).opts.compress).toBeUndefined();
    expect(refusal('resolve', ['x', '--keep', 'both']).message).toMatch(
      /ID must be a conflict ID such as docs-3, not "x"/,
    );
    expect(refusal('resolve', ['3', '--keep', 'mine']).message).toMatch(/--keep must be local, remote or both/);
    // Conflict IDs name their pair ("docs-3"); a bare number (the older IDs) is still taken.
    expect(parseCommandLine('resolve', ['my-docs-3', '--keep', 'both'], table).args.ID).toBe('my-docs-3');
    expect(parseCommandLine('resolve', ['3', '--keep', 'both', '--pair', 'docs'], table).args.ID).toBe('3');
    expect(refusal('resolve', ['docs-0', '--keep', 'both']).message).toMatch(/ID must be a conflict ID such as docs-3/);
    expect(refusal('resolve', ['Docs-3', '--keep', 'both']).message).toMatch(/ID must be a conflict ID/);
    expect(refusal('resolve', ['3']).message).toMatch(/--keep is required/);
    expect(refusal('run', ['--web', '--port', '70000']).message).toMatch(/--port must be between 1 and 65535/);
    expect(refusal('run', ['--port', '8000']).message).toMatch(/--port only applies with --web/);
    expect(refusal('service', ['frob']).message).toMatch(/ACTION must be install, uninstall or status/);
    expect(refusal('service', ['status', '--no-start']).message).toMatch(/--no-start only applies to install/);
  });

  it('`--` ends the options; -h is --help', () => {
    expect(parseCommandLine('remove', ['--', '--odd-name'], table).args.PAIR).toBe('--odd-name');
    expect(parseCommandLine('add', ['-h'], table).opts.help).toBe(true);
  });
});
