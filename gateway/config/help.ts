/** The text for people, from the option rows: `--help` of each command, the top-level overview, the configuration reference. */
import { OPTIONS } from './options.js';
import { SECTIONS, valueName, type Command, type OptionSpec } from './option.js';

/** The commands, for the overview and for the nearest command to a mistyped one. */
export const COMMANDS: Readonly<Record<Command | 'migrate-check', string>> = {
  serve: 'Serve REST and gRPC predictions for SeldonDeployments (the default command)',
  routes: 'Print the routing table compiled from manifests, and why a deployment was rejected',
  'migrate-check': 'Before a switch from Ambassador: every Mapping and Module key in use, honoured, harmless or dropped, and why',
};

/** The options the overview shows: where deployments come from, the ports, and what is shared. */
const KEY_FLAGS = ['manifests', 'kubernetes', 'port', 'admin-port', 'resolve', 'redis-url', 'log-level'];

function optionName(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'boolean' ? '' : ` ${valueName(o)}`}`;
}

/** The first sentence of an option's help (a period before a capital or the end): enough for the overview. */
function summary(o: OptionSpec): string {
  return /^(.*?\.)(?=\s+[A-Z]|$)/.exec(o.help)?.[1] ?? o.help;
}

/** An option as `--help` lists it: its name line, then its text and (environment, default). */
function optionLines(o: OptionSpec, text: string): string[] {
  const meta = [o.env, o.default ? `default ${o.default}` : ''].filter(Boolean).join(', ');
  return [`  ${optionName(o)}`, `      ${text}${meta ? ` (${meta})` : ''}`];
}

/** `seldon-gateway --help`: the commands, a few key options, and where the rest are. */
export function overviewText(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 3;
  return [
    'Usage: seldon-gateway [serve|routes|migrate-check] [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, text]) => `  ${name.padEnd(width)}${text}`),
    '',
    'Key options of serve:',
    ...KEY_FLAGS.flatMap((flag) => {
      const o = OPTIONS.find((x) => x.flag === flag)!;
      return optionLines(o, summary(o));
    }),
    '  -h, --help',
    '      Show this overview; after a command, all of its options.',
    '  -v, --version',
    '      Print the version.',
    '',
    "Run 'seldon-gateway serve --help' for every option, grouped by what it sets; 'seldon-gateway routes --help'",
    "for those of routes; 'seldon-gateway migrate-check --help' for the migration check.",
    '',
  ].join('\n');
}

/** The options under each heading of SECTIONS, in its order (empty groups left out). */
function bySection(options: readonly OptionSpec[]): [string, OptionSpec[]][] {
  return Object.entries(SECTIONS)
    .map(([section, heading]): [string, OptionSpec[]] => [heading, options.filter((o) => o.section === section)])
    .filter(([, group]) => group.length > 0);
}

/** `--help` text for a command, from the option rows: its options grouped by section, in SECTIONS order. */
export function helpText(command: Command): string {
  const usage =
    command === 'serve'
      ? 'Usage: seldon-gateway [serve] [options]\n\nServe REST and gRPC predictions for the SeldonDeployments found by --manifests, or\nwatched in the Kubernetes API (--kubernetes; the default in a cluster or with a kubeconfig).'
      : 'Usage: seldon-gateway routes -f <file-or-dir> [options]\n\nPrint the routing table compiled from the manifests, then every rejected or degraded\nSeldonDeployment with its reason. Exit 0: all compiled; 1: some rejected; 2: usage error.';
  const lines = [usage, '', 'After each option: its environment variable and default, in parentheses (a flag wins over its variable).', 'Durations take ms, s, m or h; sizes KiB, MiB or GiB.'];
  for (const [heading, group] of bySection(OPTIONS.filter((x) => x.commands.includes(command)))) {
    lines.push('', `${heading}:`);
    for (const o of group) lines.push(...optionLines(o, o.help));
  }
  return lines.join('\n') + '\n';
}

/** The configuration reference (docs): a markdown table of every option that has an environment variable. */
export function referenceTable(): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = bySection(OPTIONS.filter((o) => o.env))
    .flatMap(([, group]) => group)
    .map((o) => `| \`--${o.flag}\`${o.short ? ` / \`-${o.short}\`` : ''} | \`${o.env}\` | ${o.default ?? ''} | ${o.commands.join(', ')} | ${cell(o.help)} |`);
  return ['| flag | environment | default | commands | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}

/** The markers around the configuration reference in the docs (scripts/config-reference.ts rewrites what is between them). */
export const REFERENCE_START = '<!-- options:start (generated from gateway/config/ by scripts/config-reference.ts) -->';
export const REFERENCE_END = '<!-- options:end -->';

/** `markdown` with the text between the markers replaced by the generated table. */
export function withReferenceTable(markdown: string, table = referenceTable()): string {
  const a = markdown.indexOf(REFERENCE_START);
  const b = markdown.indexOf(REFERENCE_END, a);
  if (a < 0 || b < 0) throw new Error(`no ${REFERENCE_START} ... ${REFERENCE_END} in the text`);
  return `${markdown.slice(0, a + REFERENCE_START.length)}\n${table}${markdown.slice(b)}`;
}
