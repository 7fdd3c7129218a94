/**
 * The README's commands, run as written. Every shell block in the README carries a marker on the
 * line above it: `<!-- run:quickstart -->` blocks are run here with bash against a started quick
 * start (`node dist/examples/quickstart.js`, what `npm start` runs, on OS-chosen ports put in place
 * of 8003 and 8877), curl failing on any HTTP error status (`--fail-with-body`);
 * `<!-- install:… -->` blocks are run by test/deploy/kustomize-install.test.ts, `<!-- helm:install (…) -->` by
 * test/deploy/helm-chart.test.ts (as `helm template`); `<!-- not-run: why -->` says
 * why a block is not run (it needs a cluster, or it is the suite itself). A new block without a
 * marker fails here, so no command in the README goes untried.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startQuickstart, type Quickstart } from '../helpers/quickstart.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');

interface Block {
  /** The marker line above the block (`run:quickstart`, `install:kustomize`, `not-run: …`), or null. */
  marker: string | null;
  lang: string;
  body: string;
  line: number;
}

/** The README's fenced blocks, each with the HTML comment right above it. */
function blocks(text: string): Block[] {
  const out: Block[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\w*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.indexOf('```', i + 1);
    const marker = /^<!-- (.+?) -->$/.exec(lines[i - 1] ?? '')?.[1] ?? null;
    out.push({ marker, lang: open[1]!, body: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
  return out;
}

const SHELL = new Set(['sh', 'bash', 'shell', 'console']);
const shellBlocks = blocks(readme).filter((b) => SHELL.has(b.lang));
const runnable = shellBlocks.filter((b) => b.marker === 'run:quickstart');

describe("the README's shell blocks", () => {
  it('each says whether and where it is run (run:quickstart, install:<name>, helm:install (…), or not-run: <why>)', () => {
    const unmarked = shellBlocks.filter((b) => !b.marker || !/^(run:quickstart|install:[\w-]+|helm:install \(.+\)|not-run: .+)$/.test(b.marker));
    expect(
      unmarked.map((b) => `README.md:${b.line}`),
      'shell blocks without a marker',
    ).toEqual([]);
    expect(runnable.length).toBeGreaterThanOrEqual(3);
  });
});

describe("the README's quick start commands, run by bash against the quick start", () => {
  let qs: Quickstart;
  let port = '';
  let admin = '';

  beforeAll(async () => {
    qs = await startQuickstart();
    [port, admin] = [String(qs.port), String(qs.admin)];
  }, 30_000);
  afterAll(() => qs?.stop());

  it.each(runnable.map((b) => [`README.md:${b.line}`, b] as const))('%s exits 0, every curl answered 2xx', (_, b) => {
    const script = b.body.replace(/localhost:8003\b/g, `localhost:${port}`).replace(/localhost:8877\b/g, `localhost:${admin}`);
    // As written, but strict: a failed command or an HTTP error status fails the block.
    const strict = `set -euo pipefail\ncurl() { command curl --fail-with-body "$@"; }\n${script}\n`;
    const r = spawnSync('bash', ['-c', strict], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, `${script}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`).toBe(0);
    expect(r.stdout.trim(), script).not.toBe('');
  });

  it('the OAuth block gets a token and the prediction is answered by the deployment that owns it', () => {
    const oauth = runnable.find((b) => b.body.includes('/oauth/token'));
    expect(oauth, 'a runnable block with the OAuth example').toBeDefined();
    const script = `set -euo pipefail\n${oauth!.body.replace(/localhost:8003\b/g, `localhost:${port}`)}\n`;
    const r = spawnSync('bash', ['-c', script], { cwd: root, encoding: 'utf8', timeout: 30_000 });
    expect(r.stdout).toMatch(/^\{"access_token":"[0-9a-f-]{36}","token_type":"bearer","expires_in":\d+,"scope":"read write"\}/);
    expect(r.stdout).toContain('"seldon/iris-oauth/default"');
  });
});
