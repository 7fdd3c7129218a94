/**
 * Render install manifests as a user would: `kubectl kustomize` (the kustomize built into kubectl),
 * parsed as Kubernetes parses them (YAML 1.1, so `defaultMode: 0440` is the octal it means).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';
import { parseAllDocuments } from 'yaml';

/** A parsed Kubernetes object, walked freely (test code). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are walked without a schema
export type Obj = Record<string, any>;

export const KUSTOMIZE_ROOT = fileURLToPath(new URL('../../deploy/kustomize', import.meta.url));

/** Every object of a multi-document YAML stream (empty documents dropped). */
export function parseManifests(text: string): Obj[] {
  return parseAllDocuments(text, { version: '1.1' })
    .map((d) => d.toJS() as Obj)
    .filter((o) => o !== null);
}

/** `kubectl kustomize <dir>` (absolute), parsed. */
export function kustomize(dir: string): Obj[] {
  const r = spawnSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
  if (r.error) throw new Error(`kubectl is needed for this test (kubectl kustomize): ${r.error.message}`);
  expect(r.status, r.stderr).toBe(0);
  return parseManifests(r.stdout);
}

/** deploy/kustomize's base with `components` mixed in, in this order, into `namespace`, through an overlay written to a temp dir. */
export function baseWith(components: readonly string[], namespace = 'seldon-system'): Obj[] {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kustomize-'));
  try {
    const rel = (p: string): string => relative(dir, join(KUSTOMIZE_ROOT, p));
    const lines = [
      'apiVersion: kustomize.config.k8s.io/v1beta1',
      'kind: Kustomization',
      `namespace: ${namespace}`,
      `resources: [${rel('base')}]`,
      `components: [${components.map((n) => rel(`components/${n}`)).join(', ')}]`,
    ];
    writeFileSync(join(dir, 'kustomization.yaml'), lines.join('\n') + '\n');
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
