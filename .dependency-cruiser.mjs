// dependency-cruiser's rules for `npm run lint`: no import cycle (type-only imports included), and
// the folder table "### Import rules" of docs/architecture.md, read from the document itself so that
// the table and the check are one thing (routing/ has a row per room: routing/values/, routing/table/, …;
// a file in no row, such as a new one at routing/'s root, fails as not-in-table). A table this file cannot read, or that names a path that
// does not exist, stops the lint with the row at fault: a prose edit cannot drop a rule unnoticed.
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.dirname(fileURLToPath(import.meta.url));
const DOC = 'docs/architecture.md';
const HEADING = '### Import rules';
/** The folders of the code the table covers; anything else (test/, load/, npm packages, node:*) is not its business. */
const CODE = '^(gateway|routing|source)/';

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A table name as a path from the root: `routing/…` and `source/…` as they are, the rest under gateway/. */
function repoPath(name) {
  return /^(routing|source)\//.test(name) ? name : `gateway/${name}`;
}

/** `x/` a folder and everything in it, `x.ts` that file. */
const pattern = (p) => (p.endsWith('/') ? `^${escape(p)}` : `^${escape(p)}$`);

/**
 * The rows of the table under "### Import rules" in `markdown`: each row's folder (or file) and
 * what it may import, `types` when only `import type` may name it. `root`: where the paths must exist.
 */
export function importRules(markdown, root = ROOT) {
  const lines = markdown.split('\n');
  const at = lines.findIndex((l) => l.trim() === HEADING);
  if (at < 0) throw new Error(`${DOC}: no "${HEADING}" heading`);
  let i = at + 1;
  while (i < lines.length && !lines[i].startsWith('|') && !lines[i].startsWith('#')) i++;
  if (!lines[i]?.startsWith('|') || !/^\|[-\s|]+\|$/.test(lines[i + 1] ?? '')) throw new Error(`${DOC}: no table under "${HEADING}"`);
  const rows = [];
  for (i += 2; i < lines.length && lines[i].startsWith('|'); i++) {
    const where = `${DOC}:${i + 1} (${HEADING})`;
    const cells = lines[i]
      .split('|')
      .slice(1, -1)
      .map((c) => c.trim());
    if (cells.length < 2) throw new Error(`${where}: a row is | folder | may import | why |`);
    const from = /^`([^`]+)`$/.exec(cells[0]);
    if (!from) throw new Error(`${where}: the first cell must be one \`folder/\` or \`file.ts\`, not "${cells[0]}"`);
    const allowed = cells[1] === '—' ? [] : cells[1].split(/,\s*/).map((item) => entry(item, where, root));
    rows.push({ name: from[1], path: checked(from[1], where, root), allowed });
  }
  for (const a of rows) {
    for (const b of rows) if (a !== b && b.path.startsWith(a.path)) throw new Error(`${DOC} (${HEADING}): \`${b.name}\` is inside \`${a.name}\`; give each file one row`);
  }
  return rows;
}

function entry(item, where, root) {
  const m = /^`([^`]+)`( \(types\))?$/.exec(item);
  if (!m) throw new Error(`${where}: cannot read "${item}"; write \`folder/\`, \`file.ts\`, or either followed by " (types)"`);
  return { name: m[1], path: checked(m[1], where, root), types: m[2] !== undefined };
}

function checked(name, where, root) {
  const p = repoPath(name);
  const full = path.join(root, p);
  const ok = name.endsWith('/') ? existsSync(full) && statSync(full).isDirectory() : /\.ts$/.test(name) && existsSync(full);
  if (!ok) throw new Error(`${where}: \`${name}\` names ${p}, which is not ${name.endsWith('/') ? 'a folder' : 'a .ts file'} of the project`);
  return p;
}

/** dependency-cruiser's `forbidden` rules for the table's rows. */
export function forbiddenRules(rows) {
  const rules = [
    {
      name: 'no-circular',
      comment: 'An import cycle, type-only imports included (docs/architecture.md#import-rules).',
      severity: 'error',
      from: { path: CODE },
      to: { circular: true },
    },
    {
      name: 'not-in-table',
      comment: `A source file of a folder that has no row in the table of ${DOC} (${HEADING}): give it one.`,
      severity: 'error',
      from: { path: CODE, pathNot: rows.map((r) => pattern(r.path)) },
      to: {},
    },
    { name: 'not-to-unresolvable', comment: 'An import that does not resolve.', severity: 'error', from: {}, to: { couldNotResolve: true } },
    {
      // The table says it room by room (routing/values/, routing/table/, …: no routing row names gateway/ or
      // source/); this says it once, whatever a new row lists, so that a widened row cannot let it in.
      name: 'routing-is-pure',
      comment: `routing/ imports nothing of gateway/ or source/ (${DOC}, ${HEADING}).`,
      severity: 'error',
      from: { path: '^routing/' },
      to: { path: '^(gateway|source)/' },
    },
  ];
  for (const r of rows) {
    const values = r.allowed.filter((a) => !a.types);
    const types = r.allowed.filter((a) => a.types);
    const names = r.allowed.map((a) => `${a.name}${a.types ? ' (types)' : ''}`).join(', ') || 'nothing else of the project';
    rules.push({
      name: `import-rules:${r.name}`,
      comment: `${r.name} may import ${names} (${DOC}, ${HEADING}).`,
      severity: 'error',
      from: { path: pattern(r.path) },
      to: { path: CODE, pathNot: [r, ...r.allowed].map((a) => pattern(a.path)) },
    });
    if (types.length > 0) {
      rules.push({
        name: `import-rules:${r.name}:types`,
        comment: `${r.name} may import ${types.map((a) => a.name).join(', ')} only with \`import type\` (${DOC}, ${HEADING}).`,
        severity: 'error',
        from: { path: pattern(r.path) },
        to: { path: types.map((a) => pattern(a.path)), pathNot: values.map((a) => pattern(a.path)), dependencyTypesNot: ['type-only'] },
      });
    }
  }
  return rules;
}

/** @type {import('dependency-cruiser').IConfiguration} */
export default {
  forbidden: forbiddenRules(importRules(readFileSync(path.join(ROOT, DOC), 'utf8'))),
  options: {
    // `import type` is an import: a cycle through types is a cycle (TypeScript erases them, the design does not).
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs', '.json'], exportsFields: ['exports'], conditionNames: ['import', 'node', 'default'] },
  },
};
