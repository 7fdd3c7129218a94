/**
 * The text for people (gateway/config/help.ts, hints.ts): the overview, each command's help, the
 * configuration reference in the docs, and the nearest option or command to a mistyped one.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMMANDS, REFERENCE_END, REFERENCE_START, helpText, overviewText, referenceTable, withReferenceTable } from '../../../gateway/config/help.js';
import { nearest, unknownCommand } from '../../../gateway/config/hints.js';
import { OPTIONS } from '../../../gateway/config/options.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));

describe('help', () => {
  it('the overview is short: the commands, a few key options with their variables, --help and --version, and where the rest are', () => {
    const text = overviewText();
    expect(text.split('\n').length).toBeLessThan(40);
    for (const command of Object.keys(COMMANDS)) expect(text).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
    for (const line of ['  -f, --manifests <path>', '  --port <port>', '  -h, --help', '  -v, --version']) expect(text).toContain(`\n${line}\n`);
    expect(text).toContain('(SELDON_GATEWAY_PORT, default 8080)');
    expect(text).toContain("Run 'seldon-gateway serve --help' for every option");
  });

  it('-f says what each command does with it: serve watches it, routes reads it once', () => {
    const manifests = (command: 'serve' | 'routes') => / {2}-f, --manifests <path>\n {6}(.*)\n/.exec(helpText(command))![1]!;
    expect(manifests('routes')).toContain('routes reads it once');
    expect(manifests('serve')).toContain('serve watches it for changes');
  });

  it('each command lists only its own options', () => {
    expect(helpText('routes')).not.toContain('--port <port>');
    expect(helpText('routes')).toContain('--json');
    expect(helpText('serve')).not.toContain('--json');
  });
});

describe('the configuration reference', () => {
  it('the docs hold the table generated from the option rows (npx vite-node scripts/config-reference.ts rewrites it)', () => {
    const docs = readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md'));
    const files = ['README.md', ...docs.map((f) => join('docs', f))].filter((f) => readFileSync(join(root, f), 'utf8').includes(REFERENCE_START));
    expect(files, 'one file holds the markers').toHaveLength(1);
    const text = readFileSync(join(root, files[0]!), 'utf8');
    expect(text, 'the table differs from the option rows: run npx vite-node scripts/config-reference.ts').toBe(withReferenceTable(text));
    // Every option with an environment variable is in it, by flag and by variable.
    for (const o of OPTIONS.filter((x) => x.env)) {
      expect(text).toContain(`\`--${o.flag}\``);
      expect(text).toContain(`\`${o.env}\``);
    }
  });

  it('the table: one row per option with a variable; a | in a help text does not split its row', () => {
    const rows = referenceTable().trimEnd().split('\n');
    expect(rows.length).toBe(2 + OPTIONS.filter((o) => o.env).length);
    expect(rows).toContain('| `--port` | `SELDON_GATEWAY_PORT` | 8080 | serve | Public port: REST (HTTP/1.1 and h2c) and gRPC (h2c) on one listener, as Ambassador had. |');
    expect(withReferenceTable(`a\n${REFERENCE_START}\nold\n${REFERENCE_END}\nb`, '| x \\| y |\n')).toBe(`a\n${REFERENCE_START}\n| x \\| y |\n${REFERENCE_END}\nb`);
    expect(() => withReferenceTable('no markers')).toThrow(/no <!-- options:start/);
  });
});

describe('typos', () => {
  it('the nearest option: swaps and one-letter slips find it, unrelated words find nothing', () => {
    const flags = OPTIONS.map((o) => o.flag);
    expect(nearest('prot', flags)).toBe('port');
    expect(nearest('admin-prot', flags)).toBe('admin-port');
    expect(nearest('verbose', flags)).toBeUndefined();
  });

  it('a mistyped command gets the nearest one; a word far from every command, where to look', () => {
    const commands = [...Object.keys(COMMANDS), 'help'];
    expect(unknownCommand('rotues', commands)).toBe("Unknown command 'rotues'. Did you mean 'routes'?");
    expect(unknownCommand('serv', commands)).toBe("Unknown command 'serv'. Did you mean 'serve'?");
    expect(unknownCommand('hlep', commands)).toBe("Unknown command 'hlep'. Did you mean 'help'?");
    expect(unknownCommand('frobnicate', commands)).toBe("Unknown command 'frobnicate'. Run 'seldon-gateway --help' for the commands.");
  });
});
