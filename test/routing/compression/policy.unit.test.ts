/**
 * Compression's decisions and settings (routing/compression/policy.ts, routing/compression/config.ts,
 * routing/emissary/module-gzip.ts): Accept-Encoding negotiation by RFC 9110 §12.5.3, the answers that
 * are never compressed, `seldon.io/gateway-compression` over the gateway's flags field by field
 * (a bad value degrades the deployment, served with the gateway's settings), gRPC never
 * compressed, and the Emissary Module's `gzip` block as settings.
 */
import { describe, expect, it } from 'vitest';
import { settingsFromModuleGzip } from '../../../routing/emissary/module-gzip.js';
import { COMPRESSION_ANNOTATION, compressionAnnotation, parseCompressionFields, parseLevels } from '../../../routing/compression/config.js';
import { compressible, compressionPolicy, negotiate, requestCoding, weakEtag, type CompressionPolicy } from '../../../routing/compression/policy.js';
import { buildTable } from '../../../routing/table/builder.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions } from '../../../routing/types.js';

const ALL = ['zstd', 'br', 'gzip'] as const;

describe('negotiate: which coding an Accept-Encoding takes', () => {
  const cases: [string | undefined, string | null][] = [
    [undefined, null],
    ['', null],
    ['identity', null],
    ['gzip', 'gzip'],
    ['gzip, deflate, br', 'br'],
    ['gzip, deflate, br, zstd', 'zstd'],
    ['br;q=0.9, gzip', 'gzip'],
    ['gzip;q=0.5, br;q=0.5', 'br'],
    ['*', 'zstd'],
    ['*;q=0', null],
    ['*;q=0.1, gzip;q=0.2', 'gzip'],
    ['*, zstd;q=0, br;q=0', 'gzip'],
    ['gzip;q=0', null],
    ['identity;q=0', null],
    ['identity;q=0, br', 'br'],
    ['gzip;q=0.3, identity;q=0.5', null],
    ['gzip;q=0.5, identity;q=0.5', 'gzip'],
    ['GZIP;Q=1', 'gzip'],
    ['x-gzip', 'gzip'],
    ['  gzip ;  q=0.001  ', 'gzip'],
    ['gzip;q=1.001', null],
    ['gzip;q=abc, br', 'br'],
    ['gzip;level=1', 'gzip'],
    ['compress, deflate', null],
    [',,gzip,,', 'gzip'],
  ];
  for (const [accept, coding] of cases) it(`${JSON.stringify(accept)} → ${coding}`, () => expect(negotiate(accept, ALL)).toBe(coding));

  it('offers only what the gateway offers, in its order', () => {
    expect(negotiate('zstd, br, gzip', ['gzip', 'br'])).toBe('gzip');
    expect(negotiate('zstd', ['gzip'])).toBeNull();
    expect(negotiate('gzip', [])).toBeNull();
  });
});

describe('compressible: the answers never compressed', () => {
  const p = compressionPolicy({ algorithms: ['gzip'] })!;
  const fields = (f: Record<string, string>): { get(n: string): string | undefined } => ({ get: (n) => f[n] });
  const json = { 'content-type': 'application/json', 'content-length': '1000' };

  it('a JSON, text or XML answer of its length is', () => {
    expect(compressible(p, 'POST', 200, fields(json))).toBe(true);
    expect(compressible(p, 'GET', 404, fields({ 'content-type': 'Text/Plain; charset=utf-8' }))).toBe(true);
    expect(compressible(p, 'POST', 200, fields({ 'content-type': 'text/xml', 'content-encoding': 'identity' }))).toBe(true);
  });

  const never: [string, string, number, Record<string, string>][] = [
    ['HEAD', 'HEAD', 200, json],
    ['1xx', 'POST', 101, json],
    ['204', 'POST', 204, json],
    ['304', 'GET', 304, json],
    ['206', 'GET', 206, json],
    ['Content-Range', 'GET', 200, { ...json, 'content-range': 'bytes 0-9/100' }],
    ['short', 'POST', 200, { ...json, 'content-length': '29' }],
    ['no type', 'POST', 200, { 'content-length': '1000' }],
    ['octet-stream', 'POST', 200, { ...json, 'content-type': 'application/octet-stream' }],
    ['encoded', 'POST', 200, { ...json, 'content-encoding': 'gzip' }],
    ['no-transform', 'POST', 200, { ...json, 'cache-control': 'max-age=1, No-Transform' }],
  ];
  for (const [what, method, status, f] of never) it(`not: ${what}`, () => expect(compressible(p, method, status, fields(f))).toBe(false));

  it('30 bytes is enough (the minimum is inclusive), and the list and minimum are the policy’s', () => {
    expect(compressible(p, 'POST', 200, fields({ ...json, 'content-length': '30' }))).toBe(true);
    const q = compressionPolicy({ algorithms: ['gzip'], minLength: 0, types: ['application/octet-stream'] })!;
    expect(compressible(q, 'POST', 200, fields({ 'content-type': 'application/octet-stream', 'content-length': '1' }))).toBe(true);
    expect(compressible(q, 'POST', 200, fields(json))).toBe(false);
  });

  it('with skipEtag, an answer with an ETag is not', () => {
    const q = compressionPolicy({ algorithms: ['gzip'], skipEtag: true })!;
    expect(compressible(q, 'POST', 200, fields({ ...json, etag: '"a"' }))).toBe(false);
    expect(compressible(p, 'POST', 200, fields({ ...json, etag: '"a"' }))).toBe(true);
  });
});

describe('the ETag and the request coding', () => {
  it('a strong ETag is made weak, a weak one stays', () => {
    expect(weakEtag('"abc"')).toBe('W/"abc"');
    expect(weakEtag('W/"abc"')).toBe('W/"abc"');
  });
  it('decodes a single known coding; passes the rest as they came', () => {
    expect(requestCoding(undefined)).toBeNull();
    expect(requestCoding('identity')).toBeNull();
    expect(requestCoding('GZIP')).toBe('gzip');
    expect(requestCoding('x-gzip')).toBe('gzip');
    expect(requestCoding('deflate')).toBe('deflate');
    expect(requestCoding('zstd')).toBe('zstd');
    expect(requestCoding('br')).toBe('br');
    expect(requestCoding('gzip, br')).toBeUndefined();
    expect(requestCoding('compress')).toBeUndefined();
  });
});

describe('seldon.io/gateway-compression', () => {
  const err = (raw: string): string => {
    const p = parseCompressionFields(raw);
    if (p.ok) throw new Error(`parsed: ${JSON.stringify(p.value)}`);
    return p.error;
  };

  it('takes YAML or JSON, each field checked', () => {
    expect(parseCompressionFields('off')).toEqual({ ok: true, value: 'off' });
    expect(parseCompressionFields('{"algorithms": ["br", "gzip"], "level": {"gzip": 9, "br": 5}, "minLength": 100, "types": ["application/json"], "decodeRequests": true}')).toEqual({
      ok: true,
      value: { algorithms: ['br', 'gzip'], levels: { gzip: 9, br: 5 }, minLength: 100, types: ['application/json'], decodeRequests: true },
    });
    expect(parseCompressionFields('algorithms: [gzip]\ndecodeRequests: false')).toEqual({ ok: true, value: { algorithms: ['gzip'], decodeRequests: false } });
    expect(err('algorithms: [lz4]')).toMatch(/algorithms: "lz4" is not one of zstd, br, gzip/);
    expect(err('level: {gzip: 10}')).toMatch(/gzip's level must be a whole number from 1 to 9, not 10/);
    expect(err('level: {deflate: 1}')).toMatch(/"deflate" is not one of/);
    expect(err('minLength: -1')).toMatch(/minLength must be a whole number/);
    expect(err('types: [json]')).toMatch(/"json" is not a media type/);
    expect(err('decodeRequests: yes please')).toMatch(/decodeRequests must be true or false/);
    expect(err('colour: blue')).toMatch(/unknown field "colour"/);
  });

  it("overrides the gateway's settings field by field", () => {
    const global = { algorithms: ['gzip' as const], levels: { gzip: 6, br: 4, zstd: 3 }, minLength: 30 };
    expect(compressionAnnotation(undefined, undefined).policy).toBeNull();
    expect(compressionAnnotation(undefined, global).policy?.algorithms).toEqual(['gzip']);
    const own = compressionAnnotation('{level: {gzip: 9}, decodeRequests: true}', global).policy!;
    expect(own).toMatchObject({ algorithms: ['gzip'], levels: { gzip: 9, br: 4, zstd: 3 }, minLength: 30, decodeRequests: true });
    expect(compressionAnnotation('off', global).policy).toBeNull();
    // An annotation with algorithms compresses without --compress.
    expect(compressionAnnotation('algorithms: [br]', undefined).policy?.algorithms).toEqual(['br']);
    // decodeRequests alone decodes without compressing.
    expect(compressionAnnotation('decodeRequests: true', undefined).policy).toMatchObject({ algorithms: [], decodeRequests: true });
  });

  function backends(annotation: string | undefined, opts: Partial<CompileOptions> = {}): { state: string; reasons: readonly string[]; rest: Backend; grpc: Backend } {
    const annotations: Record<string, string> = annotation === undefined ? {} : { [COMPRESSION_ANNOTATION]: annotation };
    const d: SeldonDeployment = {
      metadata: { name: 'iris', namespace: 'ns', annotations },
      spec: { predictors: [{ name: 'main', graph: { name: 'classifier' } }] },
    };
    const t = buildTable([d], { ...DEFAULT_COMPILE_OPTIONS, ...opts });
    const r = t.deployments.get('ns/iris')!;
    const by = (kind: string): Backend => t.groups.find((g) => g.kind === kind)!.members[0]!.backend;
    return { state: r.state, reasons: r.reasons, rest: by('rest'), grpc: by('grpc') };
  }

  it('compiles onto REST backends only: gRPC is never compressed', () => {
    const c = backends('algorithms: [zstd, gzip]');
    expect(c.state).toBe('accepted');
    expect(c.rest.compression).toMatchObject({ algorithms: ['zstd', 'gzip'], decodeRequests: false });
    expect(c.grpc.compression).toBeNull();
    expect(backends(undefined).rest.compression).toBeNull();
  });

  it("explainers and a deployment's custom Mappings are REST routes too: compressed as its predictors are", () => {
    const global = { compression: { algorithms: ['gzip' as const] } };
    const explained: SeldonDeployment = {
      metadata: { name: 'iris', namespace: 'ns' },
      spec: { predictors: [{ name: 'main', graph: { name: 'classifier' }, explainer: { type: 'AnchorTabular' } }] },
    };
    const t = buildTable([explained], { ...DEFAULT_COMPILE_OPTIONS, ...global });
    const explainer = t.groups.flatMap((g) => g.members).find((m) => m.backend.id === 'ns/iris/main#explainer')!.backend;
    expect(explainer.compression?.algorithms).toEqual(['gzip']);
    const config = JSON.stringify({ apiVersion: 'getambassador.io/v2', kind: 'Mapping', name: 'm', prefix: '/seldon/ns/iris/', service: 'iris-main.ns:8000' });
    const custom: SeldonDeployment = {
      metadata: { name: 'iris', namespace: 'ns', annotations: { 'seldon.io/ambassador-config': config, [COMPRESSION_ANNOTATION]: 'algorithms: [br]' } },
      spec: { predictors: [{ name: 'main', graph: { name: 'classifier' } }] },
    };
    const mapped = buildTable([custom], { ...DEFAULT_COMPILE_OPTIONS, ...global }).groups.flatMap((g) => g.members);
    expect(mapped.map((m) => m.backend.compression?.algorithms)).toEqual([['br']]);
  });

  it('a bad value degrades the deployment alone: served with the gateway’s settings, the reason said', () => {
    const c = backends('algorithms: [lz4]', { compression: { algorithms: ['gzip'] } });
    expect(c.state).toBe('degraded');
    expect(c.reasons).toEqual([expect.stringMatching(/^seldon.io\/gateway-compression: algorithms: "lz4" .*: served with the gateway's compression settings$/)]);
    expect(c.rest.compression?.algorithms).toEqual(['gzip']);
  });
});

describe('--compress-level and the annotation level share one parser', () => {
  it('reads coding=level lists and maps', () => {
    expect(parseLevels('gzip=6,br=4,zstd=3')).toEqual({ ok: true, value: { gzip: 6, br: 4, zstd: 3 } });
    expect(parseLevels('br=11')).toEqual({ ok: true, value: { br: 11 } });
    expect(parseLevels({ zstd: 22 })).toEqual({ ok: true, value: { zstd: 22 } });
    expect(parseLevels('gzip')).toMatchObject({ ok: false, error: '"gzip" is not <coding>=<level>' });
    expect(parseLevels('zstd=23')).toMatchObject({ ok: false });
    expect(parseLevels('br=fast')).toMatchObject({ ok: false });
  });
});

describe("the Emissary Module's gzip block as settings", () => {
  const policy = (gzip: unknown): CompressionPolicy | null => {
    const s = settingsFromModuleGzip(gzip);
    if (!s.ok) throw new Error(s.error);
    return compressionPolicy(s.value);
  };

  it("a block turns gzip on, with Envoy's defaults where it is silent", () => {
    expect(policy({})).toMatchObject({ algorithms: ['gzip'], levels: { gzip: 6 }, minLength: 30, gzipMemLevel: 5, gzipWindowBits: 12, skipEtag: false });
    expect(policy(null)).toMatchObject({ algorithms: ['gzip'] });
    expect(policy({ enabled: false })).toBeNull();
  });

  it('each key means what it means to Envoy', () => {
    const p = policy({
      enabled: true,
      min_content_length: 256,
      content_type: ['application/json', 'text/plain'],
      compression_level: 'BEST',
      memory_level: 9,
      window_bits: 15,
      disable_on_etag_header: true,
      remove_accept_encoding_header: false,
    })!;
    expect(p).toMatchObject({ algorithms: ['gzip'], minLength: 256, levels: { gzip: 9 }, gzipMemLevel: 9, gzipWindowBits: 15, skipEtag: true });
    expect([...p.types]).toEqual(['application/json', 'text/plain']);
    expect(policy({ compression_level: 'SPEED' })?.levels.gzip).toBe(1);
    expect(policy({ compression_level: 'DEFAULT' })?.levels.gzip).toBe(6);
    expect(policy({ compression_level: 'COMPRESSION_LEVEL_3' })?.levels.gzip).toBe(3);
    expect(policy({ compression_level: 4 })?.levels.gzip).toBe(4);
  });

  it('refuses what it cannot honour, naming the key', () => {
    const error = (gzip: unknown): string => {
      const s = settingsFromModuleGzip(gzip);
      return s.ok ? 'parsed' : s.error;
    };
    expect(error({ compression_level: 'FASTEST' })).toMatch(/^Module gzip: compression_level must be/);
    expect(error({ memory_level: 10 })).toMatch(/memory_level/);
    expect(error({ window_bits: 8 })).toMatch(/window_bits/);
    expect(error({ content_type: 'application/json' })).toMatch(/content_type: "application\/json" is not a list/);
    expect(error({ enabled: 'yes' })).toMatch(/enabled must be true or false/);
    expect(error({ compression_strategy: 'RLE' })).toMatch(/compression_strategy/);
    expect(error({ level: 9 })).toMatch(/unknown key "level"/);
    expect(error([])).toMatch(/is not a mapping/);
  });
});
