/**
 * The command line every script shares: `--help`, `--version`, usage text
 * built from one option table, checked numbers and durations, and the exit
 * codes 0 (done), 1 (network or runtime failure) and 2 (bad usage).
 *
 * @module
 */
import { parseArgs } from "node:util";
import denoConfig from "../../deno.json" with { type: "json" };
import { writeAllSync } from "../io/print.ts";

/** netkit's version, from deno.json. */
export const VERSION: string = denoConfig.version;
/** The program did what it was asked. */
export const EXIT_OK = 0;
/** A network or runtime failure. */
export const EXIT_FAILURE = 1;
/** Bad usage: an unknown option, a bad value, a missing argument. */
export const EXIT_USAGE = 2;

/** A mistake on the command line; {@link runCommand} turns it into exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option of a command. */
export interface OptionSpec {
  type: "string" | "boolean";
  /** One-letter alias, e.g. `q` for `-q`. */
  short?: string;
  /** May be given more than once; the value is then a list. */
  multiple?: boolean;
  /** Value when the option is absent (shown in the help). */
  default?: string;
  /** Name of the value in the help, e.g. `N` or `ADDR`. Default `VALUE`. */
  arg?: string;
  /** One line for the help. */
  description: string;
}

/** A command: its name, what it does, its arguments and options. */
export interface CommandSpec {
  /** The script's name, e.g. `tcp_echo_server`. */
  name: string;
  /** One sentence on what it does. */
  summary: string;
  /** Arguments after the name, e.g. `[PORT]` or `HOST:PORT`. */
  args: string;
  /** Fewest positional arguments. Default 0. */
  minArgs?: number;
  /** Most positional arguments. Default 1. */
  maxArgs?: number;
  options: Record<string, OptionSpec>;
  /** Extra paragraphs after the options: examples, protocol notes. */
  notes?: string;
}

/** The parsed values of a command's options, typed from its spec. */
export type OptionValues<O extends Record<string, OptionSpec>> = {
  [K in keyof O]: O[K] extends { multiple: true } ? string[]
    : O[K] extends { type: "boolean" } ? boolean
    : O[K] extends { default: string } ? string
    : string | undefined;
};

/** What {@link parseCommand} returns. */
export interface ParsedCommand<O extends Record<string, OptionSpec>> {
  values: OptionValues<O>;
  positionals: string[];
}

const BUILTIN_OPTIONS: Record<string, OptionSpec> = {
  help: { type: "boolean", short: "h", description: "show this help and exit" },
  version: { type: "boolean", description: "show the version and exit" },
};

/** Renders the help text of a command. */
export function usageText(spec: CommandSpec): string {
  const rows = Object.entries({ ...spec.options, ...BUILTIN_OPTIONS }).map(([name, o]) => {
    const flag = (o.short ? `-${o.short}, ` : "    ") + `--${name}` +
      (o.type === "string" ? ` ${o.arg ?? "VALUE"}` : "");
    const extra = o.default !== undefined ? ` (default ${o.default || '""'})` : "";
    return [flag, o.description + extra + (o.multiple ? " (repeatable)" : "")];
  });
  const width = Math.max(...rows.map(([flag]) => flag.length)) + 2;
  const lines = [
    `Usage: ${spec.name} ${spec.args}`.trimEnd(),
    "",
    spec.summary,
    "",
    "Options:",
    ...rows.map(([flag, text]) => `  ${flag.padEnd(width)}${text}`),
  ];
  if (spec.notes) lines.push("", spec.notes.trim());
  return lines.join("\n") + "\n";
}

/**
 * node:util's parseArgs messages in our style, quotes balanced:
 * `Unknown option "--foo"`,
 * `Option "--timeout" needs a value`.
 */
export function parseArgsMessage(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const unknown = /^Unknown option '([^']*)'/.exec(text);
  if (unknown) {
    return `Unknown option "${unknown[1]}"`;
  }
  const missing = /^Option '(?:-\w, )?(--[^ ']+) <value>' argument missing/.exec(text);
  if (missing) return `Option "${missing[1]}" needs a value`;
  const noValue = /^Option '(?:-\w, )?(--[^ ']+)' does not take an argument/.exec(text);
  if (noValue) return `Option "${noValue[1]}" takes no value`;
  return text;
}

/** Parses arguments against a spec; throws {@link UsageError} on any mistake. */
export function parseCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec & { options: O },
  args: string[],
): ParsedCommand<O> & { help: boolean; version: boolean } {
  const options: Record<
    string,
    { type: "string" | "boolean"; short?: string; multiple?: boolean }
  > = {};
  for (const [name, o] of Object.entries({ ...spec.options, ...BUILTIN_OPTIONS })) {
    options[name] = { type: o.type };
    if (o.short) options[name].short = o.short;
    if (o.multiple) options[name].multiple = true;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(parseArgsMessage(error));
  }
  const values: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(spec.options)) {
    const given = (parsed.values as Record<string, unknown>)[name];
    values[name] = given ?? (o.multiple ? [] : o.type === "boolean" ? false : o.default);
  }
  const help = parsed.values.help === true;
  const version = parsed.values.version === true;
  const positionals = [...parsed.positionals];
  if (!help && !version) {
    const min = spec.minArgs ?? 0;
    const max = spec.maxArgs ?? 1;
    if (positionals.length < min) throw new UsageError(`Missing argument: ${spec.args}`);
    if (positionals.length > max) {
      throw new UsageError(`Unexpected argument "${positionals[max]}"`);
    }
  }
  return { values: values as OptionValues<O>, positionals, help, version };
}

/** Where a command writes its help and errors; tests pass their own. */
export interface CommandIO {
  out(text: string): void;
  err(text: string): void;
}

const encoder = new TextEncoder();
const STD_IO: CommandIO = {
  out: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
  err: (text) => writeAllSync(Deno.stderr, encoder.encode(text)),
};

/**
 * Parses `args` and runs the command, returning its exit code: `--help`
 * and `--version` print and return 0, a {@link UsageError} (thrown by the
 * parser or by `run`) prints the error and a hint and returns 2, any other
 * error prints its message and returns 1.
 */
export async function runCommand<O extends Record<string, OptionSpec>>(
  spec: CommandSpec & { options: O },
  args: string[],
  run: (parsed: ParsedCommand<O>) => number | Promise<number>,
  io: CommandIO = STD_IO,
): Promise<number> {
  try {
    const parsed = parseCommand(spec, args);
    if (parsed.help) {
      io.out(usageText(spec));
      return EXIT_OK;
    }
    if (parsed.version) {
      io.out(`${spec.name} (netkit) ${VERSION}\n`);
      return EXIT_OK;
    }
    return await run(parsed);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${spec.name}: ${error.message}\nTry '${spec.name} --help' for more information.\n`);
      return EXIT_USAGE;
    }
    io.err(`${spec.name}: ${error instanceof Error ? error.message : String(error)}\n`);
    return EXIT_FAILURE;
  }
}

/** Runs `parse` and turns whatever it throws into a {@link UsageError}. */
export function usage<T>(parse: () => T): T {
  try {
    return parse();
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** Bounds for {@link parseIntOption}. */
export interface IntBounds {
  min?: number;
  max?: number;
}

/** Parses an integer option, quoting the bad value: `Invalid --count "x": ...`. */
export function parseIntOption(text: string, name: string, bounds: IntBounds = {}): number {
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = bounds;
  const n = /^-?\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new UsageError(`Invalid --${name} "${text}": must be an integer ${min}-${max}`);
  }
  return n;
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration option into milliseconds: `500ms`, `2s`, `1.5m`, `1h`,
 * or a bare number of seconds (`60`), as Go's and nc's flags read them.
 */
export function parseDurationOption(text: string, name: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) {
    throw new UsageError(
      `Invalid --${name} "${text}": expected a duration such as 500ms, 5s or 2m`,
    );
  }
  return Math.round(Number(match[1]) * DURATION_UNITS[match[2] ?? "s"]);
}
