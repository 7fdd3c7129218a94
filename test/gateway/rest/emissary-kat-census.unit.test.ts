/**
 * test/gateway/rest/EMISSARY-KAT.md, the census of Emissary's KAT classes, kept true: every class it says is ported
 * (whole, or in the part a Mapping expresses, with what does not apply) is named in each test file it points to, and every class it says needs a resource the gateway does not read
 * names a kind `migrate-check` reports as NOT READ (routing/emissary/unread-kinds.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { unreadKind } from '../../../routing/emissary/unread-kinds.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const rows = readFileSync(join(root, 'test/gateway/rest/EMISSARY-KAT.md'), 'utf8')
  .split('\n')
  .filter((l) => /^\|\s*\w+\s*\|\s*t_\w+\.py\s*\|/.test(l))
  .map((l) => {
    const [, cls, file, where] = /^\|\s*(\w+)\s*\|\s*(t_\w+\.py)\s*\|\s*(.*?)\s*\|$/.exec(l)!;
    return { cls: cls!, file: file!, where: where! };
  });

describe('the census of Emissary KAT classes', () => {
  it('lists each class once, each ported or said not to apply', () => {
    expect(rows.length).toBeGreaterThanOrEqual(183);
    expect(new Set(rows.map((r) => `${r.file}:${r.cls}`)).size).toBe(rows.length);
    for (const r of rows) expect(r.where, r.cls).toMatch(/^(ported: |ported \(Mapping part\): .+; not applicable: .+|not applicable: )/);
  });

  it('a ported class is named in every test file it points to', () => {
    for (const r of rows.filter((x) => x.where.startsWith('ported'))) {
      // A class ported in part names its test files before what does not apply.
      const ported = r.where.split('; not applicable: ')[0]!;
      const files = [...ported.matchAll(/`([^`]+\.ts)`/g)].map((m) => m[1]!);
      expect(files.length, r.cls).toBeGreaterThan(0);
      for (const f of files) {
        const path = join(root, 'test', f);
        expect(existsSync(path), path).toBe(true);
        expect(readFileSync(path, 'utf8'), `${r.cls} in ${f}`).toMatch(new RegExp(`\\b${r.cls}\\b`));
      }
    }
  });

  it('a class that needs a resource the gateway does not read names a kind migrate-check reports', () => {
    for (const r of rows.filter((x) => x.where.includes('NOT READ'))) {
      const kind = /NOT READ (\w+)/.exec(r.where)![1]!;
      const apiVersion = kind === 'Ingress' ? 'networking.k8s.io/v1' : 'getambassador.io/v3alpha1';
      expect(unreadKind(apiVersion, kind), `${r.cls}: ${kind}`).toBeDefined();
    }
  });
});
