/**
 * docs/configuration.md's option table is the one generated from the gateway's option table
 * (scripts/config-table.ts), so every flag, environment variable, default and help text there is
 * what the parser and `--help` use.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { OPTIONS } from '../../gateway/config.js';
import { CONFIG_PAGE, optionsTable, withOptionsTable } from '../../scripts/config-table.js';

describe('docs/configuration.md', () => {
  it('its option table is the generated one (npx vite-node scripts/config-table.ts rewrites it)', () => {
    const page = readFileSync(CONFIG_PAGE, 'utf8');
    expect(page).toBe(withOptionsTable(page));
  });

  it('the generated table has a row for every option with an environment variable, flag and variable both named', () => {
    const table = optionsTable();
    for (const o of OPTIONS.filter((x) => x.env)) expect(table).toContain(`| \`--${o.flag}\`${o.short ? ` / \`-${o.short}\`` : ''} | \`${o.env}\` |`);
  });
});
