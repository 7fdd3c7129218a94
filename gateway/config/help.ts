/** The text for people, from the option rows: `--help` of each command, the top-level overview, the configuration reference. */
import { OPTIONS } from './options.js';
import { SECTIONS, valueName, type Command, type OptionSpec } from './option.js';

/** The commands, for the overview and for the nearest command to a mistyped one. */
export const COMMANDS: Readonly<Record<Command, string>> = {
  serve: 'Serve REST and gRPC predictions for SeldonDeployments (the default command)',
  routes: 'Print the routing table compiled from manifests, and why a deployment was rejected',
};

/** The options the overview shows: where deployments come from, the ports, and what is shared. */
const KEY_FLAGS = ['manifests', 'kubernetes', 'port', 'admin-port', 'resolve', 'redis-url', 'log-level'];

function optionName(o: OptionSpec): string {
  return `${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'boolean' ? '' : ` ${valueName(o)}`}`;
}

/** The first sentence of an option's help: enough for the overview. */
function summary(o: OptionSpec): string {
  return /^(.*?[^.]{3})[.:;](?:\s|$)/.exec(o.help)?.[1] ?? o.help;
}

/** `seldon-gateway --help`: the commands, a few key options, and where the rest are. */
export function overviewText(): string {
  const key = KEY_FLAGS.map((flag) => OPTIONS.find((o) => o.flag === flag)!);
  const width = Math.max(...key.map((o) => optionName(o).length), '-v, --version'.length) + 2;
  const row = (name: string, text: string): string => `  ${name.padEnd(width)}${text}`;
  return [
    'Usage: seldon-gateway [serve|routes] [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, text]) => row(name, text)),
    '',
    'Key options of serve:',
    ...key.map((o) => row(optionName(o), summary(o))),
    '',
    row('-h, --help', 'Show this help; with a command, all of its options'),
    row('-v, --version', 'Print the version'),
    '',
    "Run 'seldon-gateway serve --help' for every option, grouped by what it sets, and 'seldon-gateway routes --help'",
    'for those of routes. Each option also has an environment variable; a flag wins over it.',
    '',
  ].join('\n');
}

/** `--help` text for a command, from the option rows: its options grouped by section, in SECTIONS order. */
export function helpText(command: Command): string {
  const usage =
    command === 'serve'
      ? 'Usage: seldon-gateway [serve] [options]\n\nServe REST and gRPC predictions for the SeldonDeployments found by --manifests, or\nwatched in the Kubernetes API (--kubernetes; the default in a cluster or with a kubeconfig).'
      : 'Usage: seldon-gateway routes -f <file-or-dir> [options]\n\nPrint the routing table compiled from the manifests, then every rejected or degraded\nSeldonDeployment with its reason. Exit 0: all compiled; 1: some rejected; 2: usage error.';
  const lines = [usage, '', 'After each option: its environment variable and default, in parentheses (a flag wins over its variable).', 'Durations take ms, s, m or h; sizes KiB, MiB or GiB.'];
  const options = OPTIONS.filter((x) => x.commands.includes(command));
  for (const [section, heading] of Object.entries(SECTIONS)) {
    const group = options.filter((o) => o.section === section);
    if (group.length === 0) continue;
    lines.push('', `${heading}:`);
    for (const o of group) {
      const meta = [o.env, o.default ? `default ${o.default}` : ''].filter(Boolean).join(', ');
      lines.push(`  ${optionName(o)}`, `      ${o.help}${meta ? ` (${meta})` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

/** The configuration reference (docs): a markdown table of every option that has an environment variable. */
export function referenceTable(): string {
  const cell = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = OPTIONS.filter((o) => o.env).map((o) => `| \`--${o.flag}\`${o.short ? ` / \`-${o.short}\`` : ''} | \`${o.env}\` | ${o.default ?? ''} | ${o.commands.join(', ')} | ${cell(o.help)} |`);
  return ['| flag | environment | default | commands | meaning |', '|---|---|---|---|---|', ...rows].join('\n') + '\n';
}
