/**
 * One option of the command line: the row every section file lists its options as. The parser,
 * `--help` and the configuration reference all read these rows, so an option is written once.
 */

export type Command = 'serve' | 'routes';

export type Kind = 'string' | 'boolean' | 'int' | 'number' | 'bytes' | 'duration' | 'list';

/** The groups of `--help` (and of the configuration reference), in their order, with their headings. */
export const SECTIONS = {
  listen: 'Listen (the public port, and what clients may send it)',
  source: 'Source (where SeldonDeployments come from, and which are served)',
  tls: 'TLS (on the public port)',
  upstream: 'Upstream (how the models are reached)',
  shadows: 'Shadows (mirrored requests)',
  auth: 'Auth (OAuth tokens, rate limits)',
  extauth: "External auth (an auth service that checks every prediction, as Ambassador's AuthService)",
  observe: 'Observe (logs, traces, headers)',
  admin: 'Admin (the admin port)',
  process: 'Process',
  general: 'General',
} as const;
export type Section = keyof typeof SECTIONS;

export interface OptionSpec {
  readonly flag: string;
  /** Where `--help` lists it. */
  readonly section: Section;
  /** The value's name in `--help` (`--port <port>`); unset: the kind's (valueName). */
  readonly value?: string;
  /** Its environment variable; empty: none (`--help`). */
  readonly env: string;
  readonly kind: Kind;
  readonly help: string;
  /** Parsed by the kind's parser like user input, so a builder has no fallback values of its own. */
  readonly default?: string;
  readonly short?: string;
  readonly commands: readonly Command[];
}

export const BOTH = ['serve', 'routes'] as const;
export const SERVE = ['serve'] as const;

/** The environment form of a flag: `SELDON_GATEWAY_<FLAG>`. */
export const env = (flag: string): string => `SELDON_GATEWAY_${flag.toUpperCase().replace(/-/g, '_')}`;

const KIND_VALUE: Record<Kind, string> = { string: 'value', boolean: '', int: 'n', number: 'n', bytes: 'size', duration: 'duration', list: 'value' };

/** What `--help` calls an option's value: `<duration>`, `<path>`, `<size>`, ... (empty for a boolean). */
export function valueName(o: OptionSpec): string {
  const name = o.value ?? KIND_VALUE[o.kind];
  return name ? `<${name}>` : '';
}
