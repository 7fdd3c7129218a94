/**
 * Rewrites the configuration reference table of the docs from the option rows of gateway/config/
 * (the rows `--help` and the parser read): the table between the markers of help.ts, in whichever
 * of README.md and docs/*.md holds them.
 *
 *   npx vite-node scripts/config-reference.ts           rewrite the table
 *   npx vite-node scripts/config-reference.ts --check   exit 1 if it is not the generated one
 *
 * test/gateway/config/reference.test.ts checks the same.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { REFERENCE_START, withReferenceTable } from '../gateway/config/help.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const docs = readdirSync(join(root, 'docs'), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.md'));
const files = ['README.md', ...docs.map((f) => join('docs', f))].filter((f) => readFileSync(join(root, f), 'utf8').includes(REFERENCE_START));
if (files.length !== 1) throw new Error(`the configuration reference markers must be in one of README.md and docs/*.md, not ${files.length}`);
const file = join(root, files[0]!);
const text = readFileSync(file, 'utf8');
const generated = withReferenceTable(text);
if (!process.argv.includes('--check')) writeFileSync(file, generated);
else if (generated !== text) {
  process.stderr.write(`${file}: the configuration reference is not the one the option rows give: run npx vite-node scripts/config-reference.ts\n`);
  process.exitCode = 1;
}
