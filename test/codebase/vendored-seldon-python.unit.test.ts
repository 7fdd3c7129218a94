/**
 * The official Seldon Python package the official-client test runs is Seldon's, unmodified: every file under
 * test/fixtures/seldon-python/seldon_core/ (and the LICENSE) is listed in SHA256SUMS, written from the tag
 * v1.17.1 of SeldonIO/seldon-core (test/fixtures/seldon-python/README.md), and matches it. A file edited, added
 * or dropped fails here.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const DIR = path.resolve(import.meta.dirname, '../fixtures/seldon-python');

function files(rel: string): string[] {
  return readdirSync(path.join(DIR, rel), { withFileTypes: true }).flatMap((e) => {
    const r = path.posix.join(rel, e.name);
    if (e.isDirectory()) return e.name === '__pycache__' ? [] : files(r);
    return [r];
  });
}

describe('the vendored seldon_core', () => {
  const sums = new Map(
    readFileSync(path.join(DIR, 'SHA256SUMS'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [sum, file] = line.split(/\s+/);
        return [file!, sum!] as const;
      }),
  );

  it('holds exactly the files the list names, each as Seldon released it', () => {
    const present = [...files('seldon_core'), 'LICENSE'].sort();
    expect(present).toEqual([...sums.keys()].sort());
    for (const f of present)
      expect(
        createHash('sha256')
          .update(readFileSync(path.join(DIR, f)))
          .digest('hex'),
        f,
      ).toBe(sums.get(f));
  });

  it('is the Apache-2.0 release', () => {
    expect(readFileSync(path.join(DIR, 'LICENSE'), 'utf8')).toContain('Apache License');
    expect(readFileSync(path.join(DIR, 'seldon_core/version.py'), 'utf8')).toContain('"1.17.1"');
  });
});
