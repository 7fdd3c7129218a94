/**
 * JWT key sets against a real identity provider over HTTP (test/fixtures/identity-provider.ts), with
 * jose's real verification: keys that rotate, an identity provider that goes down, a flood of made-up
 * `kid`s, a token whose key left the set. The clock is a TestClock: cooldowns pass without sleeping.
 */
import { SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseJwtProviders } from '../../../gateway/config/jwt.js';
import { JwtVerifier } from '../../../gateway/auth/jwt.js';
import { ProviderKeySets } from '../../../gateway/auth/jwt-keys.js';
import { parseJwtPolicy, type JwtPolicy } from '../../../routing/policies/jwt.js';
import { signingKey, startIdentityProvider, type IdentityProvider, type SigningKey } from '../../fixtures/identity-provider.js';
import { TestClock } from '../../helpers/clock.js';

function policy(text: string): JwtPolicy {
  const p = parseJwtPolicy(text, new Set(['corp', 'disc']));
  if (!p.ok) throw new Error(p.error);
  return p.value;
}

describe('JWT key sets that rotate, against a real identity provider', () => {
  let idp: IdentityProvider;
  let k1: SigningKey;
  let k2: SigningKey;
  let clock: TestClock;
  let verifier: JwtVerifier;
  const corp = policy('providers: [corp]');

  beforeAll(async () => {
    idp = await startIdentityProvider();
    k1 = await signingKey('k1', 'RS256');
    k2 = await signingKey('k2', 'ES256');
  });
  afterAll(async () => idp?.close());
  afterEach(() => verifier?.providers.close());

  async function start(extra = ''): Promise<void> {
    clock = new TestClock();
    const [c] = parseJwtProviders(`- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  refresh: 1h\n${extra}`);
    verifier = new JwtVerifier(new ProviderKeySets([c!], { now: clock.now }), { now: clock.now });
    await verifier.providers.start();
  }

  it('a key published after the start signs tokens that pass a second later; one that left the set stops passing, even verified before', async () => {
    idp.published = [k1];
    idp.down = false;
    await start();
    const old = await idp.token({ sub: 'a' }, k1, clock.now());
    expect(await verifier.verify(old, corp)).toMatchObject({ ok: true, provider: 'corp' });
    // Verified once: the same token again is answered at once (no promise).
    expect(verifier.verify(old, corp)).toMatchObject({ ok: true });

    idp.published = [k1, k2];
    const fresh = await idp.token({ sub: 'b' }, k2, clock.now());
    clock.advance(1000);
    expect(await verifier.verify(fresh, corp)).toMatchObject({ ok: true, claims: { sub: 'b' } });

    // k1 rotated out: the cached verification of `old` no longer holds once the set is fetched again.
    idp.published = [k2];
    clock.advance(1000);
    const unknown = await idp.token({ sub: 'c' }, await signingKey('k9'), clock.now());
    expect(await verifier.verify(unknown, corp)).toMatchObject({ ok: false, failure: 'unknown_key' });
    expect(await verifier.verify(old, corp)).toMatchObject({ ok: false, failure: 'unknown_key' });
    expect(await verifier.verify(fresh, corp)).toMatchObject({ ok: true });
  });

  it('tokens that change on one connection: each is judged as itself (the connection remembers only its last token)', async () => {
    idp.published = [k1];
    idp.down = false;
    await start();
    const connection = {};
    const a = await idp.token({ sub: 'a' }, k1, clock.now());
    const b = await idp.token({ sub: 'b' }, k1, clock.now());
    const bad = `${b.slice(0, -4)}AAAA`;
    const seen: unknown[] = [];
    for (const t of [a, a, b, a, bad, b, b]) {
      const o = await verifier.verify(t, corp, connection);
      seen.push(o.ok ? o.claims.sub : o.failure);
    }
    expect(seen).toEqual(['a', 'a', 'b', 'a', 'signature', 'b', 'b']);
    // Another connection sending b first is not told a's claims.
    expect(await verifier.verify(b, corp, {})).toMatchObject({ ok: true, claims: { sub: 'b' } });
  });

  it('the identity provider down: tokens signed with held keys pass, the failure is in the state; with no keys ever fetched, 503 (no_keys) until it is back', async () => {
    idp.published = [k1];
    idp.down = false;
    await start();
    const t = await idp.token({ sub: 'a' }, k1, clock.now());
    idp.down = true;
    clock.advance(60_000);
    const [p] = verifier.providers.states();
    expect(p).toMatchObject({ provider: 'corp', keys: 1, lastError: null });
    // A refresh while down (the schedule's or an unknown kid's) keeps the set.
    const unknown = await idp.token({ sub: 'x' }, await signingKey('k9'), clock.now());
    expect(await verifier.verify(unknown, corp)).toMatchObject({ ok: false, failure: 'unknown_key' });
    expect(verifier.providers.states()[0]).toMatchObject({ keys: 1, lastError: `${idp.jwksUri} answered 503` });
    expect(await verifier.verify(t, corp)).toMatchObject({ ok: true });
    verifier.providers.close();

    // Started while down: nothing held.
    await start();
    expect(verifier.providers.states()[0]).toMatchObject({ keys: 0, fetchedAt: null });
    const t2 = await idp.token({ sub: 'b' }, k1, clock.now());
    expect(await verifier.verify(t2, corp)).toMatchObject({ ok: false, failure: 'no_keys' });
    idp.down = false;
    clock.advance(1000);
    expect(await verifier.verify(t2, corp)).toMatchObject({ ok: true });
  });

  it('1,000 tokens naming made-up kids cause at most two fetches', async () => {
    idp.published = [k1];
    idp.down = false;
    await start();
    const before = idp.fetches.get('/certs') ?? 0;
    const forged = await Promise.all(
      Array.from({ length: 1000 }, (_, i) =>
        new SignJWT({ sub: 'm', iss: idp.issuer, exp: Math.floor(clock.now() / 1000) + 60 }).setProtectedHeader({ alg: 'RS256', kid: `made-up-${i}` }).sign(k1.privateKey),
      ),
    );
    clock.advance(1000);
    const outcomes = await Promise.all(forged.map((t) => verifier.verify(t, corp)));
    expect(outcomes.every((o) => !o.ok && o.failure === 'unknown_key')).toBe(true);
    const fetched = (idp.fetches.get('/certs') ?? 0) - before;
    expect(fetched).toBeGreaterThanOrEqual(1);
    expect(fetched).toBeLessThanOrEqual(2);
  });

  it('discovery: the JWKS is found from the issuer; a discovery document naming another issuer is refused', async () => {
    idp.published = [k1];
    idp.down = false;
    clock = new TestClock();
    const [c] = parseJwtProviders(`- name: disc\n  issuer: ${idp.issuer}\n  discovery: true\n`);
    verifier = new JwtVerifier(new ProviderKeySets([c!], { now: clock.now }), { now: clock.now });
    await verifier.providers.start();
    expect(await verifier.verify(await idp.token({ sub: 'd' }), policy('providers: [disc]'))).toMatchObject({ ok: true, provider: 'disc' });
    verifier.providers.close();

    const liar = await startIdentityProvider('https://idp.example');
    try {
      const [l] = parseJwtProviders(`- name: disc\n  issuer: http://127.0.0.1:${liar.port}\n  discovery: true\n`);
      verifier = new JwtVerifier(new ProviderKeySets([l!], { now: clock.now }), { now: clock.now });
      await verifier.providers.start();
      expect(verifier.providers.states()[0]).toMatchObject({ keys: 0, lastError: `the discovery document's issuer "https://idp.example" is not "http://127.0.0.1:${liar.port}"` });
      expect(liar.fetches.get('/certs')).toBeUndefined();
    } finally {
      await liar.close();
    }
  });

  it('the providers file changes: an unchanged provider keeps its keys (no fetch), a changed one starts over (its verified tokens re-checked), a removed one stops passing', async () => {
    idp.published = [k1];
    idp.down = false;
    await start();
    const base = `- name: corp\n  issuer: ${idp.issuer}\n  jwksUri: ${idp.jwksUri}\n  refresh: 1h\n`;
    const t = await idp.token({ sub: 'a', aud: 'iris' }, k1, clock.now());
    expect(verifier.verify(t, corp)).toBeInstanceOf(Promise);
    expect(await verifier.verify(t, corp)).toMatchObject({ ok: true });
    const fetches = (): number => idp.fetches.get('/certs') ?? 0;
    const before = fetches();

    expect(verifier.providers.replace(parseJwtProviders(base))).toEqual([]);
    expect(verifier.verify(t, corp)).toMatchObject({ ok: true });
    expect(fetches()).toBe(before);

    // An audience the token lacks: the cached verification must not outlive the old entry.
    expect(verifier.providers.replace(parseJwtProviders(`${base}  audiences: [other]\n`))).toEqual(['corp']);
    expect(await verifier.verify(t, corp)).toMatchObject({ ok: false, failure: 'audience' });
    expect(fetches()).toBe(before + 1);
    expect(verifier.providers.replace(parseJwtProviders(`${base}  audiences: [iris]\n`))).toEqual(['corp']);
    expect(await verifier.verify(t, corp)).toMatchObject({ ok: true });

    expect(verifier.providers.replace([])).toEqual([]);
    expect(verifier.providers.states()).toEqual([]);
    expect(await verifier.verify(t, corp)).toMatchObject({ ok: false, failure: 'issuer' });
  });
});
