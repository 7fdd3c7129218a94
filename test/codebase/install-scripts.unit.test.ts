/**
 * A quiet install: every package of the lockfile that has an install script is decided in
 * package.json's `allowScripts` (npm 11 skips an undecided one and warns at the end of `npm ci`),
 * and each decision is written down in docs/development.md ("Install scripts").
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');
const read = (file: string): string => readFileSync(path.join(ROOT, file), 'utf8');

interface Lock {
  packages: Record<string, { hasInstallScript?: boolean }>;
}

describe('install scripts', () => {
  const pkg = JSON.parse(read('package.json')) as { allowScripts?: Record<string, boolean> };
  const lock = JSON.parse(read('package-lock.json')) as Lock;
  const withScripts = [
    ...new Set(Object.entries(lock.packages).flatMap(([at, p]) => (p.hasInstallScript === true ? [at.slice(at.lastIndexOf('node_modules/') + 'node_modules/'.length)] : []))),
  ].sort();

  it('finds the packages that have one', () => {
    expect(withScripts).toContain('esbuild');
  });

  it('decides each in allowScripts, and the development guide says why', () => {
    const decided = Object.keys(pkg.allowScripts ?? {}).map((k) => k.replace(/(.)@.*$/, '$1'));
    expect(withScripts.filter((name) => !decided.includes(name))).toEqual([]);
    const guide = read('docs/development.md');
    for (const name of decided) expect(guide, `docs/development.md names ${name}'s install script`).toContain(`\`${name}\``);
  });
});
