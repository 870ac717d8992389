/**
 * The machinery behind the CLI's one table of commands (commands.ts): from each
 * command's spec come both its parser and its help text, so they cannot drift.
 *
 * A command accepts only its own options and arguments: an unknown option, a
 * missing or stray argument, a missing or bad value is a `UsageError` naming the
 * command's usage, raised before anything is done.
 *
 * Just over ~400 lines: the parser and the help writer share every type and helper.
 */

/** Bad command line: exit code 2, the message, what to do, and the command's usage line. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly fix?: string,
    /** The command whose usage is printed under the error (none: the top-level usage). */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface OptionSpec {
  /** `flag`: no value; `value`: one value; `list`: one value a use, repeatable. */
  kind: 'flag' | 'value' | 'list';
  /** The value's name in help and errors: `DURATION`, `N`, `DIR`. */
  value?: string;
  /** A one-letter alias (`-h`). */
  short?: string;
  /** The command cannot go without it (`resolve --keep`). */
  required?: boolean;
  /** Help text; more lines with `\n`. */
  help: string;
  /** Checks and converts a value; throws a `UsageError` saying what is wrong and what to write. */
  parse?: (v: string, flag: string) => unknown;
}

export interface ArgSpec {
  /** Its name in help and errors: `PAIR`, `LOCAL`. */
  name: string;
  /** How usage lines show it, when not its name: `install|uninstall|status`. */
  label?: string;
  optional?: boolean;
  parse?: (v: string, name: string) => unknown;
}

export interface CommandSpec<
  A extends readonly ArgSpec[] = readonly ArgSpec[],
  O extends Options = Options,
  R = unknown,
> {
  args: A;
  options: O;
  /** One line for `lipsync --help`. */
  summary: string;
  /** The paragraphs of `lipsync COMMAND --help`, between the usage line and the options. */
  help: string;
  /** Says what a stray argument probably meant (`pause docs 10m` → `--for 10m`). */
  strayHint?: (arg: string, argv: readonly string[]) => string | undefined;
  /** Checks across options and arguments, still before anything is done. */
  check?: (a: ArgValues<A>, o: OptionValues<O>) => void;
  run: (a: ArgValues<A>, o: OptionValues<O> & GlobalValues) => Promise<R>;
}

export type Options = Record<string, OptionSpec>;

/** Any entry of the table, as the parser and the help see it (`run` and `check` take what their entry says). */
export interface AnyCommand {
  args: readonly ArgSpec[];
  options: Options;
  summary: string;
  help: string;
  strayHint?: (arg: string, argv: readonly string[]) => string | undefined;
  check?: (a: never, o: never) => void;
  /** Resolves with the exit code. */
  run: (a: never, o: never) => Promise<number>;
}

type Parsed<S, Raw> = S extends { parse: (v: string, n: string) => infer T } ? T : Raw;
type OptionValue<S extends OptionSpec> = S['kind'] extends 'flag'
  ? boolean
  : S['kind'] extends 'list'
    ? Parsed<S, string>[]
    : Parsed<S, string>;
export type OptionValues<O extends Options> = {
  [K in keyof O as O[K] extends { required: true } ? K : never]: OptionValue<O[K]>;
} & { [K in keyof O as O[K] extends { required: true } ? never : K]?: OptionValue<O[K]> };
export type ArgValues<A extends readonly ArgSpec[]> = {
  [X in A[number] as X['name']]: X extends { optional: true } ? Parsed<X, string> | undefined : Parsed<X, string>;
};

/** Options every command accepts. */
export const GLOBAL_OPTIONS = {
  'config-dir': {
    kind: 'value',
    value: 'DIR',
    help: 'settings directory (default ~/.config/lipsync, or $LIPSYNC_CONFIG_DIR)',
  },
  'data-dir': {
    kind: 'value',
    value: 'DIR',
    help: 'state directory (default ~/.local/share/lipsync, or $LIPSYNC_DATA_DIR)',
  },
  help: { kind: 'flag', short: 'h', help: 'this help' },
} as const satisfies Options;
export type GlobalValues = OptionValues<typeof GLOBAL_OPTIONS>;

/** Declares one command; keeps the literal types of its arguments and options for `run`. */
export function command<const A extends readonly ArgSpec[], const O extends Options, R>(
  spec: CommandSpec<A, O, R>,
): CommandSpec<A, O, R> {
  return spec;
}

// ---------------------------------------------------------------- help

function optionLabel(name: string, o: OptionSpec): string {
  const long = `--${name}${o.kind === 'flag' ? '' : ` ${o.value ?? 'VALUE'}`}`;
  return o.short ? `-${o.short}, ${long}` : long;
}

function argLabel(a: ArgSpec): string {
  const label = a.label ?? a.name;
  return a.optional ? `[${label}]` : label;
}

/** `ID --keep local|remote|both [--pair PAIR]`: arguments, then the options (all of them, or `[options]`). */
export function synopsis(spec: AnyCommand): string {
  const parts = spec.args.map(argLabel);
  const opts = Object.entries(spec.options);
  if (opts.length > 3) parts.push('[options]');
  else
    for (const [name, o] of opts) {
      const label = `--${name}${o.kind === 'flag' ? '' : ` ${o.value ?? 'VALUE'}`}`;
      parts.push(o.required ? label : o.kind === 'list' ? `[${label}]…` : `[${label}]`);
    }
  return parts.join(' ');
}

export function usageLine(name: string, spec: AnyCommand): string {
  const s = synopsis(spec);
  return `Usage: lipsync ${name}${s ? ` ${s}` : ''}`;
}

/** Two columns: labels padded to one width, continuation lines indented under the text. */
function columns(rows: [string, string][], indent = 2, min = 20): string {
  const width = Math.max(min, ...rows.map(([l]) => l.length + 2));
  return rows
    .map(([label, text]) =>
      text
        .split('\n')
        .map((line, i) => `${' '.repeat(indent)}${(i === 0 ? label : '').padEnd(width)}${line}`)
        .join('\n'),
    )
    .join('\n');
}

export function commandHelp(name: string, spec: AnyCommand): string {
  const rows = Object.entries(spec.options).map(([n, o]): [string, string] => [optionLabel(n, o), o.help]);
  const globals = Object.entries(GLOBAL_OPTIONS).map(([n, o]): [string, string] => [optionLabel(n, o), o.help]);
  const width = Math.max(24, ...[...rows, ...globals].map(([l]) => l.length + 2));
  return [
    usageLine(name, spec),
    '',
    spec.help,
    ...(rows.length ? ['', 'Options:', columns(rows, 2, width)] : []),
    '',
    'Global options:',
    columns(globals, 2, width),
  ].join('\n');
}

export function overview(header: string, table: Record<string, AnyCommand>): string {
  const rows = Object.entries(table).map(([name, spec]): [string, string] => {
    const args = spec.args.map(argLabel).join(' ');
    return [`${name}${args ? ` ${args}` : ''}`, spec.summary];
  });
  const globals = Object.entries(GLOBAL_OPTIONS).map(([n, o]): [string, string] => [optionLabel(n, o), o.help]);
  globals.push(['--version', 'print the version']);
  return [
    header,
    '',
    'Usage: lipsync <command> [options]',
    '',
    'Commands:',
    columns(rows),
    '',
    'Global options:',
    columns(globals),
    '',
    'Help for one command: lipsync <command> --help',
  ].join('\n');
}

// ---------------------------------------------------------------- parsing

export interface ParsedLine {
  args: Record<string, unknown>;
  opts: Record<string, unknown>;
}

/** Which other commands accept this option: for "--keep is an option of `lipsync resolve`". */
function ownersOf(flag: string, table: Record<string, AnyCommand>): string[] {
  return Object.entries(table)
    .filter(([, s]) => Object.hasOwn(s.options, flag))
    .map(([n]) => n);
}

/**
 * Parses the words after the command's name. `--name value`, `--name=value`, `-h`;
 * `--` ends the options. Throws a `UsageError` for anything the command does not take.
 */
export function parseCommandLine(name: string, argv: readonly string[], table: Record<string, AnyCommand>): ParsedLine {
  const spec = table[name]!;
  const all: Options = { ...spec.options, ...GLOBAL_OPTIONS };
  const opts: Record<string, unknown> = {};
  const positionals: string[] = [];
  const seen = new Set<string>();
  /** An option of any command (`--for --json`: the value was forgotten, not a "-" value). */
  const isKnownOption = (w: string) =>
    [GLOBAL_OPTIONS as Options, ...Object.values(table).map((s) => s.options)].some((opts) =>
      Object.entries(opts).some(
        ([k, o]) => w.split('=')[0] === `--${k}` || (o.short !== undefined && w === `-${o.short}`),
      ),
    );
  const err = (message: string, fix?: string) => new UsageError(`lipsync ${name}: ${message}`, fix, name);
  /** A value parser's or check's error, told as this command's. */
  const checked = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      if (e instanceof UsageError && e.command === undefined) throw err(e.message, e.fix);
      throw e;
    }
  };

  for (let i = 0; i < argv.length; i++) {
    const word = argv[i]!;
    if (word === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!word.startsWith('-') || word === '-') {
      positionals.push(word);
      continue;
    }
    let key: string;
    let inline: string | undefined;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      key = eq < 0 ? word.slice(2) : word.slice(2, eq);
      inline = eq < 0 ? undefined : word.slice(eq + 1);
    } else {
      const short = Object.entries(all).find(([, o]) => o.short !== undefined && `-${o.short}` === word);
      if (!short) {
        if (/^-\d/.test(word))
          throw err(
            `unexpected argument "${word}".`,
            `If it is a name that starts with "-", write it after --: lipsync ${name} -- ${word}`,
          );
        throw err(`unknown option ${word}.`, `See \`lipsync ${name} --help\`.`);
      }
      key = short[0];
    }
    const o = Object.hasOwn(all, key) ? all[key]! : undefined;
    if (!o) {
      const owners = ownersOf(key, table).filter((n) => n !== name);
      throw err(
        `unknown option --${key}.`,
        owners.length
          ? `--${key} is an option of ${owners.map((n) => `\`lipsync ${n}\``).join(' and ')}, not of \`lipsync ${name}\`; see \`lipsync ${name} --help\`.`
          : `See \`lipsync ${name} --help\` for its options.`,
      );
    }
    const flag = `--${key}`;
    if (o.kind === 'flag') {
      if (inline !== undefined) throw err(`${flag} takes no value (got "${inline}").`, `Write ${flag} alone.`);
      opts[key] = true;
      continue;
    }
    let value = inline;
    if (value === undefined) {
      const next = argv[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-' && !/^-\d/.test(next)))
        throw err(
          `${flag} needs a value: ${flag} ${o.value ?? 'VALUE'}.`,
          next === undefined || isKnownOption(next)
            ? undefined
            : `A value that starts with "-" is written ${flag}=${next}.`,
        );
      value = next;
      i++;
    }
    const parse = o.parse;
    const parsed = parse ? checked(() => parse(value, flag)) : value;
    if (o.kind === 'list') (opts[key] = (opts[key] as unknown[] | undefined) ?? []).push(parsed);
    else {
      if (seen.has(key)) throw err(`${flag} is given twice.`, `Give it once.`);
      opts[key] = parsed;
    }
    seen.add(key);
  }

  if (opts.help) return { args: {}, opts };

  const args: Record<string, unknown> = {};
  spec.args.forEach((a, i) => {
    const v = positionals[i];
    if (v === undefined) {
      if (!a.optional) throw err(`missing ${a.name}.`, `See \`lipsync ${name} --help\`.`);
      return;
    }
    const parse = a.parse;
    args[a.name] = parse ? checked(() => parse(v, a.name)) : v;
  });
  for (const [key, o] of Object.entries(spec.options))
    if (o.required && opts[key] === undefined)
      throw err(`--${key} is required: --${key} ${o.value ?? 'VALUE'}.`, `See \`lipsync ${name} --help\`.`);
  const stray = positionals.slice(spec.args.length);
  if (stray.length) {
    const hint = spec.strayHint?.(stray[0]!, argv);
    const what =
      stray.length === 1
        ? `unexpected argument "${stray[0]}"`
        : `unexpected arguments ${stray.map((s) => `"${s}"`).join(' ')}`;
    throw err(
      `${what}${spec.args.length ? '' : ` (${name} takes no arguments)`}.`,
      hint ?? `See \`lipsync ${name} --help\`.`,
    );
  }
  const check = spec.check;
  if (check) checked(() => check(args as never, opts as never));
  return { args, opts };
}

// ---------------------------------------------------------------- value parsers

/** A whole number within [min, max]. */
export function intValue(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (v: string, flag: string): number => {
    if (!/^\d+$/.test(v)) throw new UsageError(`${flag} must be a whole number, not "${v}".`);
    const n = Number(v);
    if (n < min || n > max) throw new UsageError(`${flag} must be between ${min} and ${max}, not ${n}.`);
    return n;
  };
}

/** One of a fixed set of words. */
export function oneOf<const T extends string>(choices: readonly T[]) {
  return (v: string, flag: string): T => {
    if ((choices as readonly string[]).includes(v)) return v as T;
    const list =
      choices.length === 2 ? choices.join(' or ') : `${choices.slice(0, -1).join(', ')} or ${choices.at(-1)}`;
    throw new UsageError(`${flag} must be ${list}, not "${v}".`);
  };
}

const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** The longest pause a timer can hold (Node's timers stop at 2^31-1 ms, ~24.8 days). */
export const MAX_DURATION_MS = 24 * 86_400_000;

/** `30m`, `1h`, `8h`, `90s`, `2d`, `1h30m` → milliseconds. A bare number is refused: it has no unit. */
export function parseDuration(s: string, flag = '--for'): number {
  const t = s.trim();
  if (/^\d+$/.test(t))
    throw new UsageError(
      `${flag} ${t}: a duration needs a unit.`,
      `Write ${t}m for minutes, ${t}h for hours (also s, d).`,
    );
  if (!/^(\d+[smhd])+$/.test(t))
    throw new UsageError(`${flag}: "${s}" is not a duration.`, 'Write for example 30m, 1h, 8h, 90s, 2d or 1h30m.');
  let ms = 0;
  for (const [, n, u] of t.matchAll(/(\d+)([smhd])/g)) ms += Number(n) * UNIT_MS[u as keyof typeof UNIT_MS];
  if (ms <= 0) throw new UsageError(`${flag} ${t}: a pause must last more than 0.`, 'Write for example 30m.');
  if (ms > MAX_DURATION_MS)
    throw new UsageError(
      `${flag} ${t}: at most 24d.`,
      'To pause for longer, pause without --for; it lasts until `lipsync resume`.',
    );
  return ms;
}

/** Milliseconds → `1h30m`, `90s`, `2d` (the form `parseDuration` reads). */
export function formatDuration(ms: number): string {
  let rest = Math.round(ms / 1000);
  let out = '';
  for (const [u, secs] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    if (rest >= secs) {
      out += `${Math.floor(rest / secs)}${u}`;
      rest %= secs;
    }
  }
  return out || '0s';
}

/** Does this look like a duration (for "did you mean --for 10m")? */
export function looksLikeDuration(s: string): boolean {
  return /^(\d+[smhd])+$|^\d+$/.test(s.trim());
}
