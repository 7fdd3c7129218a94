/**
 * The option table of docs/configuration.md, generated from the gateway's own option table
 * (`OPTIONS`, which the parser and `--help` read too): flag, environment variable, default, the
 * commands that take it, and its help text.
 *
 *   npx vite-node scripts/config-table.ts           rewrite the table in docs/configuration.md
 *   npx vite-node scripts/config-table.ts --check   exit 1 if the page's table is not the generated one
 *
 * test/units/config-docs.test.ts checks the same.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { OPTIONS } from '../gateway/config.js';

export const CONFIG_PAGE = fileURLToPath(new URL('../docs/configuration.md', import.meta.url));
const START = '<!-- options:start (generated from the option table by scripts/config-table.ts) -->';
const END = '<!-- options:end -->';

/** A table cell: pipes escaped, one line. */
const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function optionsTable(): string {
  const lines = ['| flag | environment | default | commands | meaning |', '|---|---|---|---|---|'];
  // Options without an environment variable (--help) are not configuration.
  for (const o of OPTIONS.filter((x) => x.env)) {
    const flag = `\`--${o.flag}\`${o.short ? ` / \`-${o.short}\`` : ''}`;
    lines.push(`| ${flag} | ${o.env ? `\`${o.env}\`` : ''} | ${o.default ?? ''} | ${o.commands.join(', ')} | ${cell(o.help)} |`);
  }
  return lines.join('\n');
}

/** `page` with the table between its markers replaced by the generated one. */
export function withOptionsTable(page: string): string {
  const from = page.indexOf(START);
  const to = page.indexOf(END);
  if (from < 0 || to < from) throw new Error(`docs/configuration.md needs the markers ${START} and ${END}`);
  return `${page.slice(0, from + START.length)}\n${optionsTable()}\n${page.slice(to)}`;
}

// Run as a script (vite-node puts itself in argv[1]); imported by a test, nothing is written.
if (!process.env['VITEST']) {
  const page = readFileSync(CONFIG_PAGE, 'utf8');
  const generated = withOptionsTable(page);
  if (process.argv.includes('--check')) {
    if (generated !== page) {
      process.stderr.write("docs/configuration.md: the option table differs from the gateway's; run npx vite-node scripts/config-table.ts\n");
      process.exitCode = 1;
    }
  } else if (generated !== page) {
    writeFileSync(CONFIG_PAGE, generated);
    process.stdout.write('docs/configuration.md: option table rewritten\n');
  }
}
