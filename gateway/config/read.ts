/**
 * The options' values for one command, from argv and the environment (a flag wins over its
 * variable, both over the row's default), through the value parsers. Section builders read it.
 */
import { parseArgs } from 'node:util';
import { readList } from '../../routing/values/list.js';
import { argumentError } from './hints.js';
import type { Command, OptionSpec } from './option.js';
import { parseBool, parseBytes, parseChoice, parseDuration, parseFraction, parseNumber, parsePort, parseWhole, UsageError } from './values.js';

export interface Reader {
  readonly command: Command;
  readonly environment: NodeJS.ProcessEnv;
  /** Set on the command line or in the environment (an option of the other command never is). */
  given(flag: string): boolean;
  /** Set on the command line. */
  onCommandLine(flag: string): boolean;
  /** The text given, else the row's default; undefined when neither. */
  optStr(flag: string): string | undefined;
  /** The same, for an option whose row has a default. */
  str(flag: string): string;
  bool(flag: string): boolean;
  optInt(flag: string): number | undefined;
  int(flag: string): number;
  optPort(flag: string): number | undefined;
  port(flag: string): number;
  /** An upstream's port: 1..65535 (a listener's `port` may be 0, any free port). */
  servicePort(flag: string): number;
  optBytes(flag: string): number | undefined;
  bytes(flag: string): number;
  duration(flag: string): number;
  number(flag: string): number;
  fraction(flag: string): number;
  choice<T extends string>(flag: string, choices: readonly T[]): T;
  /** Repeated flags, or the variable's comma-separated entries; blanks dropped. */
  list(flag: string): string[];
}

type Raw = string | boolean | string[] | undefined;

/** Parse argv (after the sub-command) against the rows of `command`; throws UsageError on an unknown or valueless option. */
export function createReader(command: Command, argv: readonly string[], environment: NodeJS.ProcessEnv, options: readonly OptionSpec[]): Reader {
  const own = options.filter((o) => o.commands.includes(command));
  const parseOptions: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const o of own) {
    parseOptions[o.flag] = { type: o.kind === 'boolean' ? 'boolean' : 'string', ...(o.kind === 'list' ? { multiple: true } : {}), ...(o.short ? { short: o.short } : {}) };
  }
  let values: Record<string, Raw | (string | boolean)[]>;
  try {
    ({ values } = parseArgs({ args: [...argv], options: parseOptions, allowPositionals: false, strict: true }));
  } catch (e) {
    throw new UsageError(argumentError(command, e, options));
  }
  const spec = (flag: string): OptionSpec => {
    const o = options.find((x) => x.flag === flag);
    if (!o) throw new Error(`no option --${flag}`);
    return o;
  };
  const envValue = (o: OptionSpec): string | undefined => {
    const e = o.env ? environment[o.env] : undefined;
    return e === '' ? undefined : e;
  };
  // An option another command owns is not read from argv or env, but still has its default.
  const get = (flag: string): Raw => {
    const o = spec(flag);
    if (!own.includes(o)) return o.default;
    const v = values[o.flag];
    if (v !== undefined) return v as Raw;
    const e = envValue(o);
    if (e !== undefined) return o.kind === 'list' ? e.split(',') : e;
    return o.default;
  };
  const optStr = (flag: string): string | undefined => {
    const v = get(flag);
    return typeof v === 'string' ? v : undefined;
  };
  const str = (flag: string): string => {
    const v = optStr(flag);
    if (v === undefined) throw new Error(`--${flag} has no default in its row`);
    return v;
  };
  const opt =
    <T>(parse: (flag: string, v: string) => T) =>
    (flag: string): T | undefined => {
      const v = optStr(flag);
      return v === undefined ? undefined : parse(flag, v);
    };
  const req =
    <T>(parse: (flag: string, v: string) => T) =>
    (flag: string): T =>
      parse(flag, str(flag));
  return {
    command,
    environment,
    given: (flag) => {
      const o = spec(flag);
      return own.includes(o) && (values[flag] !== undefined || envValue(o) !== undefined);
    },
    onCommandLine: (flag) => values[flag] !== undefined,
    optStr,
    str,
    bool: (flag) => {
      const v = get(flag);
      // A string for a boolean comes from its environment variable: the message names that.
      return typeof v === 'boolean' ? v : typeof v === 'string' ? parseBool(spec(flag).env || `--${flag}`, v) : false;
    },
    optInt: opt(parseWhole),
    int: req(parseWhole),
    optPort: opt(parsePort),
    port: req(parsePort),
    servicePort: req((flag, v) => parsePort(flag, v, 1)),
    optBytes: opt(parseBytes),
    bytes: req(parseBytes),
    duration: req(parseDuration),
    number: req(parseNumber),
    fraction: req(parseFraction),
    choice: (flag, choices) => parseChoice(flag, str(flag), choices),
    list: (flag) => {
      const v = get(flag);
      const list = v === undefined ? undefined : readList(v);
      return list?.ok ? list.value : [];
    },
  };
}
