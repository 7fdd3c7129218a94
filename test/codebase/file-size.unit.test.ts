/**
 * Small modules: no TypeScript file of the gateway, the routing core or the sources is over 500
 * lines. The files are read from the tree, so a new one is held to it the day it lands.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const LIMIT = 500;

function tsFiles(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const rel = path.join(dir, e.name);
    if (e.isDirectory()) return tsFiles(rel);
    return e.name.endsWith('.ts') ? [rel] : [];
  });
}

const lines = (file: string): number => readFileSync(path.join(ROOT, file), 'utf8').split('\n').length - 1;

describe('module size', () => {
  const files = ['gateway', 'routing', 'source'].flatMap(tsFiles);

  it('finds the modules it holds to the limit', () => {
    expect(files.length).toBeGreaterThan(100);
    expect(files).toContain(path.join('gateway', 'main.ts'));
  });

  it(`keeps every .ts file under gateway/, routing/ and source/ at ${LIMIT} lines or fewer`, () => {
    const over = files.filter((f) => lines(f) > LIMIT).map((f) => `${f}: ${lines(f)} lines`);
    expect(over).toEqual([]);
  });
});
