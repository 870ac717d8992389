/**
 * The `lipsync` command: looks the command up in THE table (commands.ts), parses its
 * words against that entry (args.ts), then runs it. Help comes from the same table.
 */
import { VERSION } from '../engine/engine.js';
import { toErrorInfo } from '../engine/errors.js';
import { type AnyCommand, commandHelp, overview, parseCommandLine, usageLine, UsageError } from './args.js';
import { COMMANDS, isCommand } from './commands.js';
import { printError } from './output.js';

/** `lipsync --help`. */
export const USAGE = overview(
  `lipsync ${VERSION}: keep a local folder in sync with a folder on a server, over SSH.`,
  COMMANDS,
);

/** `lipsync COMMAND --help`. */
export function helpFor(name: string): string | undefined {
  return isCommand(name) ? commandHelp(name, COMMANDS[name]) : undefined;
}

function printUsageError(e: UsageError): void {
  console.error(`error: ${e.message}`);
  if (e.fix) console.error(`  fix: ${e.fix}`);
  if (e.command && isCommand(e.command)) console.error(usageLine(e.command, COMMANDS[e.command]));
}

/** `lipsync --config-dir X status` is `lipsync status --config-dir X`: global options may come first. */
function globalsFirst(argv: string[]): string[] {
  const lead: string[] = [];
  let i = 0;
  while (i < argv.length && /^--(config-dir|data-dir)(=|$)/.test(argv[i]!)) {
    const n = argv[i]!.includes('=') ? 1 : 2;
    lead.push(...argv.slice(i, i + n));
    i += n;
  }
  return lead.length && i < argv.length ? [argv[i]!, ...lead, ...argv.slice(i + 1)] : argv;
}

export async function main(args: string[]): Promise<number> {
  const argv = globalsFirst(args);
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '-h' || cmd === '--help') {
    console.log(USAGE);
    return 0;
  }
  if (cmd === '--version' || cmd === '-v') {
    console.log(VERSION);
    return 0;
  }
  if (cmd === 'help') {
    const topic = rest[0];
    if (topic === undefined) console.log(USAGE);
    else if (rest.length > 1 || !isCommand(topic)) {
      printUsageError(
        new UsageError(`lipsync help: no command "${rest.join(' ')}".`, 'See `lipsync --help` for the commands.'),
      );
      return 2;
    } else console.log(helpFor(topic));
    return 0;
  }
  if (!isCommand(cmd)) {
    printUsageError(
      new UsageError(
        /^--(config-dir|data-dir)(=|$)/.test(cmd)
          ? `no command after ${cmd.split('=')[0]}.`
          : cmd.startsWith('-')
            ? `unknown option ${cmd} (the command comes first).`
            : `unknown command "${cmd}".`,
        'See `lipsync --help` for the commands.',
      ),
    );
    return 2;
  }
  const spec = COMMANDS[cmd];
  let parsed;
  try {
    parsed = parseCommandLine(cmd, rest, COMMANDS);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    printUsageError(e);
    return 2;
  }
  if (parsed.opts.help) {
    console.log(commandHelp(cmd, spec));
    return 0;
  }
  try {
    return await (spec as AnyCommand).run(parsed.args as never, parsed.opts as never);
  } catch (e) {
    if (e instanceof UsageError) {
      printUsageError(e);
      return 2;
    }
    printError(toErrorInfo(e));
    return 1;
  }
}
