/** --jwt-providers (gateway/config/jwt.ts): the file's entries checked at start; a bad one exits 2 naming the entry and field. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { JWT_ALGORITHMS } from '../../../gateway/config/jwt.js';
import { refusal } from './refusal.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-jwtp-'));
function file(text: string): string {
  const p = join(dir, `p${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}
const config = (text: string) => parseConfig('serve', ['--manifests', dir, '--jwt-providers', file(text)], {});

describe('--jwt-providers', () => {
  it('each source of keys, the defaults, and the names routing may use', () => {
    const c = config(
      '- name: corp\n  issuer: https://idp.example/realms/ml\n  jwksUri: https://idp.example/realms/ml/protocol/openid-connect/certs\n  audiences: [seldon]\n  algorithms: [RS256, ES256]\n  clockSkew: 30s\n' +
        '- name: dex\n  issuer: https://dex.example\n  discovery: true\n' +
        '- name: airgap\n  issuer: https://idp.internal\n  jwksFile: /etc/seldon/jwks.json\n',
    );
    expect(c.jwtProviders.map((p) => [p.name, p.keys])).toEqual([
      ['corp', { kind: 'jwks', url: 'https://idp.example/realms/ml/protocol/openid-connect/certs' }],
      ['dex', { kind: 'discovery', url: 'https://dex.example/.well-known/openid-configuration' }],
      ['airgap', { kind: 'file', path: '/etc/seldon/jwks.json' }],
    ]);
    expect(c.jwtProviders[0]).toMatchObject({ audiences: ['seldon'], algorithms: ['RS256', 'ES256'], clockSkewMs: 30_000 });
    expect(c.jwtProviders[1]).toMatchObject({ audiences: [], algorithms: [...JWT_ALGORITHMS], clockSkewMs: 60_000, refreshMs: 300_000, cooldownMs: 1000 });
    expect([...c.compile.jwtProviders!]).toEqual(['corp', 'dex', 'airgap']);
  });

  it.each([
    ['- name: corp\n  issuer: x\n', 'provider "corp": give exactly one of jwksUri, discovery: true, jwksFile'],
    ['- name: corp\n  issuer: x\n  jwksUri: https://a/k\n  jwksFile: /k\n', 'provider "corp": give exactly one of jwksUri, discovery: true, jwksFile'],
    [
      '- name: corp\n  issuer: x\n  jwksUri: https://a/k\n  algorithms: [HS256]\n',
      'provider "corp".algorithms: "HS256" is not one of ' + JWT_ALGORITHMS.join(', ') + ' (symmetric and "none" are never accepted)',
    ],
    [
      '- name: corp\n  issuer: x\n  jwksUri: https://a/k\n  algorithms: [none]\n',
      'provider "corp".algorithms: "none" is not one of ' + JWT_ALGORITHMS.join(', ') + ' (symmetric and "none" are never accepted)',
    ],
    ['- name: corp\n  issuer: x\n  jwksUri: ftp://a/k\n', 'provider "corp".jwksUri: "ftp://a/k" is not http(s)'],
    ['- name: corp\n  issuer: x\n  jwksUri: https://u:p@a/k\n', 'provider "corp".jwksUri: a URL with credentials is not accepted'],
    ['- name: corp\n  issuer: not a url\n  discovery: true\n', 'provider "corp".issuer (discovery: true): "not a url" is not a URL'],
    ['- name: corp\n  issuer: x\n  jwksUri: https://a/k\n  clockSkew: 60\n', 'provider "corp".clockSkew: 60 is not a duration like 30s or 5m'],
    [
      '- name: corp\n  issuer: x\n  jwksUri: https://a/k\n  jwks_uri: https://a/k\n',
      'providers[0]: unknown field "jwks_uri" (fields: name, issuer, jwksUri, discovery, jwksFile, audiences, algorithms, clockSkew, refresh, cooldown)',
    ],
    ['- name: Corp\n  issuer: x\n  jwksUri: https://a/k\n', 'providers[0].name: "Corp" is not a name (lower-case letters, digits, "-", "_", ".")'],
    ['- name: corp\n  issuer: x\n  jwksUri: https://a/k\n- name: corp\n  issuer: y\n  jwksUri: https://b/k\n', 'provider "corp": named twice'],
    ['name: corp\n', 'must be a list of providers (- name: …, issuer: …)'],
  ])('%j: refused', (text, words) => {
    const p = file(text);
    expect(refusal(() => parseConfig('serve', ['--manifests', dir, '--jwt-providers', p], {}))).toBe(`--jwt-providers ${p}: ${words}`);
  });

  it('a file that cannot be read', () => {
    expect(refusal(() => parseConfig('serve', ['--manifests', dir, '--jwt-providers', join(dir, 'absent.yaml')], {}))).toBe(`--jwt-providers: cannot read ${join(dir, 'absent.yaml')}: ENOENT`);
  });
});
