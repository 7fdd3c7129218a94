/** Mistakes on the command line in the gateway's words: the nearest option or command for a mistyped one. */
import { valueName, type Command, type OptionSpec } from './option.js';

/** A parseArgs error in the gateway's words: value names instead of `<value>`, and the nearest option for a mistyped one. */
export function argumentError(command: Command, e: unknown, options: readonly OptionSpec[]): string {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown }).code;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const given = /Unknown option '([^']+)'/.exec(message)?.[1];
    if (given === undefined) return message;
    const name = given.replace(/^--?/, '').replace(/=.*$/, '');
    const other = options.find((o) => o.flag === name && !o.commands.includes(command));
    if (other) return `Option '--${name}' is an option of ${other.commands.join(' and ')}, not of ${command}`;
    const near = given.startsWith('--')
      ? nearest(
          name,
          options.filter((o) => o.commands.includes(command)).map((o) => o.flag),
        )
      : undefined;
    return near === undefined ? `Unknown option '${given}'. Run 'seldon-gateway ${command} --help' for the options.` : `Unknown option '${given}'. Did you mean '--${near}'?`;
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const flag = /--([a-z0-9-]+) <value>/.exec(message)?.[1];
    const o = options.find((x) => x.flag === flag);
    if (o) return `Option '--${o.flag} ${valueName(o)}' needs a value`;
  }
  return message;
}

/** The word closest to a mistyped one (edit distance, a swap of neighbours counting 1), if close enough to be a typo. */
export function nearest(typed: string, words: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(typed.length * 0.4));
  let best: { word: string; distance: number } | undefined;
  for (const word of words) {
    const distance = editDistance(typed, word);
    if (distance <= limit && (best === undefined || distance < best.distance)) best = { word, distance };
  }
  return best?.word;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent swaps. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** A word where a command was expected, in the gateway's words: the nearest command if it looks mistyped. */
export function unknownCommand(typed: string, commands: readonly string[]): string {
  const near = nearest(typed, commands);
  return near === undefined ? `Unknown command '${typed}'. Run 'seldon-gateway --help' for the commands.` : `Unknown command '${typed}'. Did you mean '${near}'?`;
}
