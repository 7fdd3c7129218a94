/**
 * The import check of `npm run lint` (.dependency-cruiser.mjs, the table of docs/architecture.md
 * "Import rules") fails on what it must: a tree planted with a cycle made of type-only imports, an
 * import the table forbids (backward ones among them: observe/ reading edge/'s types, a value reader of
 * routing/ importing the table, Emissary's room a policy family's, a room gateway/), a value import where the table allows types only, and a folder the
 * table does not name; and it passes the imports the table allows. On the project's own tree, every
 * entry of the known-violations baseline still occurs (a fixed one must leave the file, so that it
 * cannot come back unseen).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cruise, type ICruiseOptions, type ICruiseResult, type IViolation } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
import extractTSConfig from 'dependency-cruiser/config-utl/extract-ts-config';

const ROOT = path.resolve(import.meta.dirname, '../..');
const CONFIG = path.join(ROOT, '.dependency-cruiser.mjs');
const BASELINE = path.join(ROOT, '.dependency-cruiser-known-violations.json');

/** Cruise `dirs` of `baseDir` with the project's real rules. */
async function check(baseDir: string, dirs: string[]): Promise<IViolation[]> {
  const options: ICruiseOptions = await extractDepcruiseOptions(CONFIG);
  const tsConfig = extractTSConfig(path.join(baseDir, 'tsconfig.json'));
  const result = await cruise(dirs, { ...options, baseDir }, {}, { tsConfig });
  return (result.output as ICruiseResult).summary.violations;
}

const found = (violations: IViolation[]): string[] => violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`).sort();

describe('the import check', () => {
  let tree: string;
  beforeAll(() => {
    tree = mkdtempSync(path.join(tmpdir(), 'import-rules-'));
    const plant = (file: string, text: string): void => {
      mkdirSync(path.dirname(path.join(tree, file)), { recursive: true });
      writeFileSync(path.join(tree, file), text);
    };
    plant('tsconfig.json', JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true } }));
    // A cycle of type-only imports: erased at run time, still a cycle.
    plant('routing/table/left.ts', "import type { Right } from './right.js';\nexport interface Left { right?: Right }\n");
    plant('routing/table/right.ts', "import type { Left } from './left.js';\nexport interface Right { left?: Left }\n");
    plant('gateway/upstream/pool.ts', "import type { Left } from '../../routing/table/left.js';\nexport const pool = (l: Left): Left => l;\n");
    // routing/'s rooms, backwards: a value reader importing the table, Emissary's room importing a policy
    // family, a room importing gateway/; and a file at routing/'s root that no row names.
    plant('routing/values/reader.ts', "import type { Left } from '../table/left.js';\nexport const read = (l: Left): Left => l;\n");
    plant('routing/flow/config.ts', 'export const FLOW = 1;\n');
    plant('routing/emissary/mapping.ts', "import { FLOW } from '../flow/config.js';\nexport const mapping = FLOW;\n");
    plant('routing/table/pick.ts', "import { pool } from '../../gateway/upstream/pool.js';\nexport const pick = pool;\n");
    plant('routing/stray.ts', "import { FLOW } from './flow/config.js';\nexport const stray = FLOW;\n");
    // Allowed: the table imports Emissary's room and the value readers.
    plant('routing/table/match.ts', "import { mapping } from '../emissary/mapping.js';\nimport { read } from '../values/reader.js';\nexport const match = [mapping, read];\n");
    // auth/ may not import upstream/.
    plant('gateway/auth/gate.ts', "import { pool } from '../upstream/pool.js';\nexport const gate = pool;\n");
    // admin/ may import steer/describe.ts by `import type` only.
    plant('gateway/steer/describe.ts', 'export interface Run { step: number }\nexport const RUN: Run = { step: 0 };\n');
    plant('gateway/admin/page.ts', "import type { Run } from '../steer/describe.js';\nexport const step = (r: Run): number => r.step;\n");
    plant('gateway/admin/steal.ts', "import { RUN } from '../steer/describe.js';\nexport const run = RUN;\n");
    // A backward import, types only still: observe/ sits below edge/ (edge/ imports it), so it may not read edge/'s exchange.
    plant('gateway/edge/exchange.ts', 'export interface Exchange { url: string }\n');
    plant('gateway/observe/log.ts', "import type { Exchange } from '../edge/exchange.js';\nexport const url = (e: Exchange): string => e.url;\n");
    // A folder the table has no row for.
    plant('gateway/stray/thing.ts', "import { pool } from '../upstream/pool.js';\nexport const thing = pool;\n");
    // Allowed: rest/ imports upstream/ and auth/'s types.
    plant('gateway/rest/proxy.ts', "import { pool } from '../upstream/pool.js';\nimport type { gate } from '../auth/gate.js';\nexport const proxy: typeof gate = pool;\n");
  });
  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  it('finds the type-only cycle and each import the table forbids, and nothing else, as errors', async () => {
    const violations = await check(tree, ['gateway', 'routing']);
    // An error fails `depcruise` (and so `npm run lint`).
    expect(violations.map((v) => v.rule.severity)).toEqual(violations.map(() => 'error'));
    expect(found(violations)).toEqual([
      'import-rules:admin/:types: gateway/admin/steal.ts → gateway/steer/describe.ts',
      'import-rules:auth/: gateway/auth/gate.ts → gateway/upstream/pool.ts',
      'import-rules:observe/: gateway/observe/log.ts → gateway/edge/exchange.ts',
      'import-rules:routing/emissary/: routing/emissary/mapping.ts → routing/flow/config.ts',
      'import-rules:routing/table/: routing/table/pick.ts → gateway/upstream/pool.ts',
      'import-rules:routing/values/: routing/values/reader.ts → routing/table/left.ts',
      'no-circular: routing/table/left.ts → routing/table/right.ts',
      'not-in-table: gateway/stray/thing.ts → gateway/upstream/pool.ts',
      'not-in-table: routing/stray.ts → routing/flow/config.ts',
      'routing-is-pure: routing/table/pick.ts → gateway/upstream/pool.ts',
    ]);
  });

  it('refuses a table it cannot read, so that an edit of the document cannot drop a rule unnoticed', async () => {
    // The config is plain JavaScript (dependency-cruiser loads it); its parser, typed here by hand.
    const { importRules } = (await import(CONFIG)) as { importRules: (markdown: string, root?: string) => { name: string; allowed: { name: string; types: boolean }[] }[] };
    const table = (...rows: string[]): string => ['### Import rules', '', '| folder | may import | why |', '|---|---|---|', ...rows, ''].join('\n');
    expect(importRules(table('| `admin/` | `routing/`, `steer/` (types) | renders |'), ROOT)).toEqual([
      {
        name: 'admin/',
        path: 'gateway/admin/',
        allowed: [
          { name: 'routing/', path: 'routing/', types: false },
          { name: 'steer/', path: 'gateway/steer/', types: true },
        ],
      },
    ]);
    expect(() => importRules(table('| `admin/` | `routing/` types, `observe/` | renders |'), ROOT)).toThrow('cannot read "`routing/` types"');
    expect(() => importRules(table('| `admin/` | `rooting/` | renders |'), ROOT)).toThrow('`rooting/` names gateway/rooting/, which is not a folder of the project');
    expect(() => importRules(table('| `source/` | — | sources |', '| `source/kubernetes/` | — | the API side |'), ROOT)).toThrow('`source/kubernetes/` is inside `source/`');
    expect(() => importRules('## Import rules\n\n| a | b |\n|---|---|\n', ROOT)).toThrow('no "### Import rules" heading');
  });

  it('on the project: every known violation of the baseline still occurs (delete the ones fixed)', async () => {
    const known = JSON.parse(readFileSync(BASELINE, 'utf8')) as IViolation[];
    const now = new Set(found(await check(ROOT, ['gateway', 'routing', 'source'])));
    expect(found(known).filter((v) => !now.has(v))).toEqual([]);
  });
});
