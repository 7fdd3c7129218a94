/**
 * The values table of deploy/helm/seldon-gateway/README.md, generated from the chart's values.yaml:
 * a key whose line above starts with `# --` gets a row (its path, type, default and that comment),
 * as helm-docs reads them; maps without such a comment are walked into. Every value must be
 * documented, by itself or by a documented map or list around it.
 *
 *   node scripts/chart-readme.ts           rewrite the table in the README (Node 22.18+ runs .ts)
 *   node scripts/chart-readme.ts --check   exit 1 if the README's table is not the generated one
 *
 * test/deploy/helm-chart.test.ts checks the same.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isMap, isScalar, isSeq, parseDocument, type Node } from 'yaml';

export const CHART_DIR = fileURLToPath(new URL('../deploy/helm/seldon-gateway/', import.meta.url));
const START = '<!-- values:start (generated from values.yaml by scripts/chart-readme.ts) -->';
const END = '<!-- values:end -->';

export interface ValueRow {
  readonly key: string;
  readonly type: string;
  readonly default: unknown;
  readonly description: string;
}

function typeOf(v: unknown): string {
  if (Array.isArray(v)) return 'list';
  if (v === null) return 'null';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** The documented keys of a values.yaml, in file order; throws on a value nothing documents. */
export function valueRows(valuesYaml: string): ValueRow[] {
  const doc = parseDocument(valuesYaml);
  if (doc.errors.length > 0) throw new Error(`values.yaml: ${doc.errors.map((e) => e.message).join('; ')}`);
  const rows: ValueRow[] = [];
  const undocumented: string[] = [];
  const walk = (node: Node | null, path: string, documented: boolean): void => {
    if (!isMap(node)) {
      const empty = isScalar(node) || node === null || (isSeq(node) && node.items.length === 0);
      if (!documented && (empty || isSeq(node))) undocumented.push(path);
      return;
    }
    if (!documented && node.items.length === 0) undocumented.push(path);
    node.items.forEach((pair, i) => {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const full = path ? `${path}.${key}` : key;
      // The parser gives the comment above a map's first key to the map itself.
      const comment = (isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? (i === 0 ? node.commentBefore : undefined) ?? '';
      const at = comment.split('\n').findIndex((l) => l.trimStart().startsWith('-- '));
      if (at >= 0) {
        const description = comment
          .split('\n')
          .slice(at)
          .map((l, i) => (i === 0 ? l.trimStart().slice(3) : l.trim()))
          .join(' ')
          .trim();
        const value: unknown = pair.value === null ? null : (pair.value as Node).toJSON();
        rows.push({ key: full, type: typeOf(value), default: value, description });
      }
      walk(pair.value as Node | null, full, documented || at >= 0);
    });
  };
  walk(doc.contents as Node | null, '', false);
  if (undocumented.length > 0) throw new Error(`values.yaml: no "# --" comment documents ${undocumented.join(', ')}`);
  return rows;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');

/** The markdown table of `rows`. */
export function valuesTable(rows: readonly ValueRow[]): string {
  const lines = ['| key | type | default | description |', '|---|---|---|---|'];
  for (const r of rows) lines.push(`| \`${r.key}\` | ${r.type} | \`${cell(JSON.stringify(r.default))}\` | ${cell(r.description)} |`);
  return lines.join('\n');
}

/** `readme` with the table between its markers replaced by the one generated from `valuesYaml`. */
export function withValuesTable(readme: string, valuesYaml: string): string {
  const from = readme.indexOf(START);
  const to = readme.indexOf(END);
  if (from < 0 || to < from) throw new Error(`the chart README needs the markers ${START} and ${END}`);
  return `${readme.slice(0, from + START.length)}\n${valuesTable(valueRows(valuesYaml))}\n${readme.slice(to)}`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const readmePath = `${CHART_DIR}README.md`;
  const readme = readFileSync(readmePath, 'utf8');
  const generated = withValuesTable(readme, readFileSync(`${CHART_DIR}values.yaml`, 'utf8'));
  if (process.argv.includes('--check')) {
    if (generated !== readme) {
      process.stderr.write('deploy/helm/seldon-gateway/README.md: the values table differs from values.yaml; run node scripts/chart-readme.ts\n');
      process.exitCode = 1;
    }
  } else if (generated !== readme) {
    writeFileSync(readmePath, generated);
    process.stdout.write('deploy/helm/seldon-gateway/README.md: values table rewritten\n');
  }
}
