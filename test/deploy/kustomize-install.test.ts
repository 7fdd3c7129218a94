/**
 * The README's Kubernetes install, run as written on a machine with kubectl and nothing else: the
 * shell block under `<!-- install:kustomize -->` runs with bash in a copy of deploy/, `docker`
 * standing in as a recorder (no image is built) and `kubectl apply` recorded instead of sent;
 * `kubectl kustomize` is the real one. What it renders must create its Namespace and run the image
 * the block built and pushed, and the checked-in manifests must be untouched. The variants the
 * README names (the production and single-namespace overlays, another namespace) render too.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { kustomize, parseManifests, type Obj } from '../helpers/kustomize.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
/** The README's install, and docs/deployment.md, which has the rest (another namespace). */
const readme = ['README.md', 'docs/deployment.md'].map((f) => readFileSync(join(root, f), 'utf8')).join('\n');

/** The fenced block right after `<!-- install:<name> -->` in the README or docs/deployment.md. */
function readmeBlock(name: string): string {
  const m = new RegExp(`<!-- install:${name} -->\\n\`\`\`[a-z]*\\n([\\s\\S]*?)\\n\`\`\`\\n`).exec(readme);
  expect(m, `README block install:${name}`).not.toBeNull();
  return m![1]!;
}

/** Every file under `dir`, relative, with its bytes. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else out.set(relative(dir, full), readFileSync(full, 'latin1'));
    }
  };
  walk(dir);
  return out;
}

const CLUSTER_SCOPED = ['ClusterRole', 'ClusterRoleBinding', 'Namespace'];

describe("the README's install with kubectl alone", () => {
  const work = mkdtempSync(join(tmpdir(), 'sgw-install-'));
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  cpSync(join(root, 'deploy/kustomize'), join(work, 'deploy/kustomize'), { recursive: true });
  const before = snapshot(join(work, 'deploy/kustomize'));
  const log = join(work, 'calls.log');
  // Shell functions win over programs: docker records, kubectl records `apply` and runs the rest.
  const prelude = [
    `docker() { echo "docker $*" >> ${JSON.stringify(log)}; }`,
    `kubectl() { if [ "$1" = apply ]; then echo "kubectl $*" >> ${JSON.stringify(log)}; else command kubectl "$@"; fi; }`,
    'set -euo pipefail',
  ].join('\n');
  const block = readmeBlock('kustomize');
  const run = spawnSync('bash', ['-c', `${prelude}\n${block}`], { cwd: work, encoding: 'utf8', env: { PATH: process.env.PATH, HOME: work } });
  if (run.error) throw run.error;
  const calls = (): string[] => readFileSync(log, 'utf8').trim().split('\n');

  it('runs to the end with kubectl only (kustomize is its own `kubectl kustomize`)', () => {
    expect(run.status, run.stderr).toBe(0);
    expect(block).not.toMatch(/^\s*kustomize\s/m);
    expect(block).not.toContain('kustomize edit');
  });

  it('renders the Namespace and runs the image the block built and pushed, everything into that Namespace', () => {
    const [build, push, apply] = calls();
    const image = /^docker build -t (\S+) \.$/.exec(build ?? '')?.[1];
    expect(image, build).toBeDefined();
    expect(push).toBe(`docker push ${image}`);
    const objs = parseManifests(run.stdout);
    const ns = objs.filter((o) => o.kind === 'Namespace');
    expect(ns.map((o) => o.metadata.name)).toEqual(['seldon-system']);
    for (const o of objs) if (!CLUSTER_SCOPED.includes(o.kind)) expect(o.metadata.namespace, `${o.kind} ${o.metadata.name}`).toBe('seldon-system');
    const deployment = objs.find((o) => o.kind === 'Deployment')!;
    expect(deployment.spec.template.spec.containers.map((c: Obj) => c.image)).toEqual([image]);
    const binding = objs.find((o) => o.kind === 'ClusterRoleBinding')!;
    expect(binding.subjects).toEqual([{ kind: 'ServiceAccount', name: 'seldon-gateway', namespace: 'seldon-system' }]);
    // What is applied is what was reviewed.
    expect(apply).toBe('kubectl apply -k deploy/local');
    expect(block).toContain('kubectl kustomize deploy/local');
  });

  it('edits nothing checked in: deploy/kustomize is byte for byte as it was, and deploy/local is git-ignored', () => {
    expect(snapshot(join(work, 'deploy/kustomize'))).toEqual(before);
    const ignored = spawnSync('git', ['check-ignore', '-q', 'deploy/local/kustomization.yaml'], { cwd: root });
    expect(ignored.status, 'deploy/local/ is in .gitignore').toBe(0);
  });

  /** The block's overlay with its `resources` entry changed and `extra` appended, rendered. */
  const variant = (resource: string, extra = ''): Obj[] => {
    const overlay = readFileSync(join(work, 'deploy/local/kustomization.yaml'), 'utf8');
    expect(overlay).toContain('  - ../kustomize ');
    const dir = mkdtempSync(join(work, 'deploy/variant-'));
    writeFileSync(join(dir, 'kustomization.yaml'), overlay.replace('  - ../kustomize ', `  - ${resource} `) + extra);
    return kustomize(dir);
  };

  it('the overlays the README names in its place render: production creates seldon-system, single-namespace creates nothing', () => {
    const production = variant('../kustomize/overlays/production');
    expect(production.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual(['seldon-system']);
    expect(production.some((o) => o.kind === 'ServiceMonitor')).toBe(true);
    const single = variant('../kustomize/overlays/single-namespace');
    expect(single.filter((o) => o.kind === 'Namespace')).toEqual([]);
    expect(new Set(single.map((o) => o.metadata.namespace))).toEqual(new Set(['seldon']));
    for (const objs of [production, single]) expect(objs.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].image).toBe('registry.example.com/ml/seldon-gateway:0.1.0');
  });

  it("another namespace (the README's transformer): everything there, the Namespace renamed, and the bindings' subjects moved with it", () => {
    const transformer = readmeBlock('namespace');
    const target = /^namespace: (\S+)/.exec(transformer)![1]!;
    expect(transformer).toContain(`      namespace: ${target} `);
    for (const resource of ['../kustomize', '../kustomize/overlays/single-namespace']) {
      const objs = variant(resource, transformer + '\n');
      for (const o of objs) if (!CLUSTER_SCOPED.includes(o.kind)) expect(o.metadata.namespace, `${resource}: ${o.kind}`).toBe(target);
      const bindings = objs.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding');
      expect(bindings.length).toBe(1);
      expect(bindings[0]!.subjects).toEqual([{ kind: 'ServiceAccount', name: 'seldon-gateway', namespace: target }]);
      expect(objs.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name)).toEqual(resource === '../kustomize' ? [target] : []);
    }
  });
});
