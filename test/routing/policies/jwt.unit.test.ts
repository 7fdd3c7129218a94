/**
 * `seldon.io/gateway-jwt` compiled (routing/policies/jwt.ts): what an annotation may say, what it may
 * never say (where keys come from: no tenant makes the gateway fetch a URL), the defaults, and the
 * policy a route to a JWT-gated deployment's Service carries, whoever's route it is.
 */
import { describe, expect, it } from 'vitest';
import { parseJwtPolicy } from '../../../routing/policies/jwt.js';
import { headerGetter, match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type CompileOptions, type Routed } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const KNOWN = new Set(['corp', 'dex']);
const error = (raw: string, known: ReadonlySet<string> | null = KNOWN): string => {
  const p = parseJwtPolicy(raw, known ?? undefined);
  if (p.ok) throw new Error('accepted');
  return p.error;
};

describe('seldon.io/gateway-jwt', () => {
  it('the defaults: the Authorization Bearer token, required, not forwarded, nothing more asked of it', () => {
    expect(parseJwtPolicy('providers: [corp]', KNOWN)).toEqual({
      ok: true,
      value: { providers: ['corp'], audiences: [], scopes: [], claims: [], from: [{ kind: 'header', name: 'authorization' }], allowMissing: false, claimsToHeaders: [], forward: false },
    });
  });

  it('every field, in YAML or JSON', () => {
    const yaml =
      'providers: [corp, dex]\naudiences: iris\nscopes: [predict]\nclaims: { tenant: team-a, level: 3 }\nfrom: [header:X-Token, query:access_token, cookie:session]\nallowMissing: true\nclaimsToHeaders: { sub: X-Jwt-Sub }\nforward: true';
    const p = parseJwtPolicy(yaml, KNOWN);
    expect(p).toEqual({
      ok: true,
      value: {
        providers: ['corp', 'dex'],
        audiences: ['iris'],
        scopes: ['predict'],
        claims: [
          ['tenant', 'team-a'],
          ['level', '3'],
        ],
        from: [
          { kind: 'header', name: 'x-token' },
          { kind: 'query', name: 'access_token' },
          { kind: 'cookie', name: 'session' },
        ],
        allowMissing: true,
        claimsToHeaders: [['sub', 'x-jwt-sub']],
        forward: true,
      },
    });
    expect(parseJwtPolicy(JSON.stringify({ providers: ['corp'], scopes: ['a'] }), KNOWN).ok).toBe(true);
  });

  it.each(['jwksUri', 'issuer', 'discovery', 'jwksFile', 'jwks_uri', 'url'])('%s: refused by name, whatever its value (the operator says where keys come from)', (field) => {
    expect(error(`providers: [corp]\n${field}: https://evil.example/keys`)).toBe(
      `seldon.io/gateway-jwt: ${field}: where keys come from is the operator's to say (--jwt-providers); an annotation names providers only`,
    );
  });

  it('a provider the operator did not name, or none at all, or a URL in its place: refused, naming what is configured', () => {
    expect(error('providers: [okta]')).toBe('seldon.io/gateway-jwt: providers: "okta" is not a provider of this gateway (configured: corp, dex)');
    expect(error('providers: [https://evil.example/.well-known/jwks.json]')).toMatch(/is not a provider of this gateway/);
    expect(error('providers: [corp]', null)).toBe('seldon.io/gateway-jwt: providers: "corp" is not a provider of this gateway (none is configured (--jwt-providers))');
    expect(error('audiences: [x]')).toBe('seldon.io/gateway-jwt: providers: name at least one provider (--jwt-providers)');
  });

  it('typos and values that would open a hole are errors, never ignored', () => {
    expect(error('providers: [corp]\nscope: [predict]')).toMatch(/unknown field "scope"/);
    expect(error('providers: [corp]\nallowMissing: "yes"')).toBe('seldon.io/gateway-jwt: allowMissing: "yes" is not true or false');
    expect(error('providers: [corp]\nfrom: [body:token]')).toBe('seldon.io/gateway-jwt: from: "body:token" is not header:<name>, query:<name> or cookie:<name>');
    expect(error('providers: [corp]\nfrom: [header:cookie]')).toBe('seldon.io/gateway-jwt: from: a token is not read from cookie');
    expect(error('providers: [corp]\nclaimsToHeaders: { sub: authorization }')).toBe('seldon.io/gateway-jwt: claimsToHeaders: sub: a claim is not written to authorization');
    expect(error('providers: [corp]\nclaimsToHeaders: { sub: host }')).toBe('seldon.io/gateway-jwt: claimsToHeaders: sub: a claim is not written to host');
    expect(error('providers: [corp]\nclaimsToHeaders: { sub: "x y" }')).toMatch(/is not a valid header name/);
    expect(error('providers: [corp]\nclaims: { tenant: { a: 1 } }')).toBe('seldon.io/gateway-jwt: claims: tenant: {"a":1} is not a string, number or boolean');
    expect(error('providers: [corp]\nscopes: ["a b"]')).toBe('seldon.io/gateway-jwt: scopes: ["a b"]: a scope has no spaces');
  });
});

describe('a JWT-gated deployment in the table', () => {
  const opts: CompileOptions = { ...DEFAULT_COMPILE_OPTIONS, jwtProviders: KNOWN, customConfigScope: 'cluster' };
  const sdep = (ns: string, name: string, annotations: Record<string, string>): SeldonDeployment => ({ metadata: { name, namespace: ns }, spec: { annotations, predictors: [{ name: 'main' }] } });
  const routed = (t: ReturnType<typeof buildTable>, path: string): Routed => {
    const d = match(t, { kind: 'rest', method: 'POST', path, host: 'gw', header: headerGetter({}) }, randomPicker(seededRandom(1)));
    if (!d.ok) throw new Error(d.info);
    return d;
  };

  it("its routes carry the policy; a bad policy rejects that deployment alone; another's route to its Service carries its policy too", () => {
    const beta = sdep('team-b', 'beta', { 'seldon.io/gateway-jwt': 'providers: [corp]\nscopes: [predict]' });
    const bad = sdep('team-b', 'bad', { 'seldon.io/gateway-jwt': 'providers: [corp]\njwksUri: http://10.0.0.1/keys' });
    const open = sdep('team-b', 'open', {});
    const x = sdep('team-x', 'x', { 'seldon.io/ambassador-config': 'apiVersion: ambassador/v1\nkind: Mapping\nname: m\nprefix: /x/\nservice: beta-main.team-b:8000' });
    const t = buildTable([beta, bad, open, x], opts);
    expect(routed(t, '/seldon/team-b/beta/api/v1.0/predictions').backend.gate!.jwt!.scopes).toEqual(['predict']);
    expect(routed(t, '/seldon/team-b/open/api/v1.0/predictions').backend.gate).toBeNull();
    expect(t.deployments.get('team-b/bad')!.state).toBe('rejected');
    const via = routed(t, '/x/');
    expect(via.backend.gate!.jwt!.providers).toEqual(['corp']);
    expect(via.backend.gate!.auth).toBeNull();
    expect(t.deployments.get('team-x/x')!.reasons.join('\n')).toContain('Service team-b/beta-main belongs to JWT-gated deployment team-b/beta: routes to it need a token its policy accepts');
  });
});
