/**
 * What a release carries, checked where it is written: the version in one place (package.json),
 * which the chart's appVersion, the image's version label, the kustomize base's image tag and the
 * changelog follow; the license package.json names, in full; the image's OCI labels.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (path: string): string => readFileSync(join(root, path), 'utf8');
const pkg = JSON.parse(read('package.json')) as { version: string; license: string; description: string };
const dockerfile = read('Dockerfile');

/** The runtime stage's LABEL instruction, continuation lines joined, as key → value. */
function imageLabels(): Record<string, string> {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const m = /^LABEL ((?:.*\\\n)*.*)$/m.exec(runtime);
  expect(m, 'a LABEL in the runtime stage').not.toBeNull();
  return Object.fromEntries([...m![1]!.replace(/\\\n/g, ' ').matchAll(/([\w.]+)="([^"]*)"/g)].map((x) => [x[1]!, x[2]!]));
}

/** The runtime stage's ARG defaults. */
function imageArgs(): Record<string, string> {
  const runtime = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  return Object.fromEntries([...runtime.matchAll(/^ARG (\w+)=("?)(.*)\2$/gm)].map((x) => [x[1]!, x[3]!]));
}

describe('release', () => {
  it("the version is package.json's: the chart's appVersion, the image label, the kustomize image tag and the changelog follow it", () => {
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$/);
    const chart = parseYaml(read('deploy/helm/seldon-gateway/Chart.yaml')) as { appVersion: string; version: string };
    expect(chart.appVersion).toBe(pkg.version);
    expect(imageLabels()['org.opencontainers.image.version']).toBe('${VERSION}');
    expect(imageArgs().VERSION).toBe(pkg.version);
    const base = parseYaml(read('deploy/kustomize/base/kustomization.yaml')) as { images: { name: string; newTag: string }[] };
    expect(base.images.find((i) => i.name === 'seldon-gateway')!.newTag).toBe(pkg.version);
    const changelog = read('CHANGELOG.md');
    expect(changelog).toMatch(new RegExp(`^## \\[${pkg.version.replace(/\./g, '\\.')}\\] - \\d{4}-\\d{2}-\\d{2}$`, 'm'));
  });

  it('the changelog keeps an Unreleased section above the versions, newest first', () => {
    const headings = [...read('CHANGELOG.md').matchAll(/^## \[([^\]]+)\]/gm)].map((m) => m[1]!);
    expect(headings[0]).toBe('Unreleased');
    const versions = headings.slice(1);
    expect(versions.length).toBeGreaterThan(0);
    const newer = (a: string, b: string): boolean => {
      const [x, y] = [a, b].map((v) => v.split('.').map(Number));
      const i = x!.findIndex((n, j) => n !== y![j]);
      return i >= 0 && x![i]! > y![i]!;
    };
    for (let i = 1; i < versions.length; i++) expect(newer(versions[i - 1]!, versions[i]!), `${versions[i - 1]} before ${versions[i]}`).toBe(true);
  });

  it('LICENSE is the full Apache License 2.0 that package.json names', () => {
    expect(pkg.license).toBe('Apache-2.0');
    const license = read('LICENSE');
    expect(license).toContain('Apache License\n                           Version 2.0, January 2004');
    expect(license).toContain('TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION');
    for (let section = 1; section <= 9; section++) expect(license, `section ${section}`).toMatch(new RegExp(`^\\s+${section}\\. [A-Z]`, 'm'));
    expect(license).toContain('END OF TERMS AND CONDITIONS');
    expect(license.split('\n').length).toBeGreaterThan(190);
  });

  it("the image carries the OCI labels: title, description, version, licenses (package.json's), source and revision (build arguments)", () => {
    const labels = imageLabels();
    expect(labels['org.opencontainers.image.title']).toBe('seldon-gateway');
    expect(labels['org.opencontainers.image.description']).toBe(pkg.description);
    expect(labels['org.opencontainers.image.licenses']).toBe(pkg.license);
    expect(labels['org.opencontainers.image.source']).toBe('${SOURCE_URL}');
    expect(labels['org.opencontainers.image.revision']).toBe('${REVISION}');
    expect(Object.keys(imageArgs())).toEqual(expect.arrayContaining(['VERSION', 'SOURCE_URL', 'REVISION']));
    // The build line the Dockerfile shows fills them in.
    expect(dockerfile).toMatch(/^#\s+docker build .*--build-arg SOURCE_URL=.*--build-arg REVISION=/m);
  });
});
