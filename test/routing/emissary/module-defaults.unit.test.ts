/**
 * The ambassador Module's `defaults` (routing/emissary/module-defaults.ts), as Emissary's `lookup_default`:
 * `defaults.httpmapping.<key>` over `defaults.<key>` for add_request_headers, remove_request_headers,
 * add_response_headers, remove_response_headers (stats_name accepted, changing nothing); a Mapping's own
 * key wins (even `{}` / `[]`); Seldon's generated routes take them too; any other key under `defaults`, or a
 * value a Mapping could not carry, refuses the Module with its reason.
 */
import { describe, expect, it } from 'vitest';
import { inspectModule, parseAmbassadorModule } from '../../../routing/emissary/module.js';
import { mappingDefaultsPolicy, withMappingDefaults } from '../../../routing/emissary/module-defaults.js';
import { moduleCompile, type ModuleBase } from '../../../gateway/config/ambassador-module.js';
import { headerGetter, match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions, type RouteTable } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const module = (config: string): string => `apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`;
const refusal = (config: string): string => {
  try {
    parseAmbassadorModule(module(config));
  } catch (e) {
    return (e as Error).message;
  }
  return 'accepted';
};

/** LinkerdHeaderMapping's Module (t_mappingtests_default.py). */
const KAT_DEFAULTS = 'defaults:\n  httpmapping:\n    add_request_headers:\n      fruit:\n        append: False\n        value: orange\n    remove_request_headers:\n    - x-evil-header';

describe("reading the Module's defaults", () => {
  it("LinkerdHeaderMapping's defaults are honoured, as written", () => {
    const m = parseAmbassadorModule(module(KAT_DEFAULTS));
    expect(m.mappingDefaults).toEqual({ add_request_headers: { fruit: { append: false, value: 'orange' } }, remove_request_headers: ['x-evil-header'] });
    const key = inspectModule(module(KAT_DEFAULTS)).keys.find((k) => k.key === 'defaults');
    expect(key?.class).toBe('honoured');
  });

  it('defaults.httpmapping.<key> wins over defaults.<key>; a top-level key the class does not set still applies', () => {
    const m = parseAmbassadorModule(module('defaults:\n  add_request_headers: {a: top}\n  remove_response_headers: [x-top]\n  httpmapping:\n    add_request_headers: {a: class}'));
    expect(m.mappingDefaults).toEqual({ add_request_headers: { a: 'class' }, remove_response_headers: ['x-top'] });
  });

  it("stats_name is accepted and changes nothing (as a Mapping's own); not a string refuses", () => {
    const m = parseAmbassadorModule(module('defaults:\n  stats_name: all'));
    expect(m.mappingDefaults).toBeUndefined();
    expect(refusal('defaults:\n  httpmapping:\n    stats_name: [1]')).toBe('config.defaults: not honoured: httpmapping.stats_name: [1] is not a string');
  });

  it('a key Emissary does not default, another resource class, or a shape that is no map refuses the Module with the reason', () => {
    expect(refusal('defaults:\n  timeout_ms: 10')).toMatch(/^config\.defaults: not honoured: timeout_ms: not a key Emissary defaults for a Mapping/);
    expect(refusal('defaults:\n  httpmapping:\n    rewrite: /x/')).toMatch(/^config\.defaults: not honoured: httpmapping\.rewrite: not a key Emissary defaults for a Mapping/);
    expect(refusal('defaults:\n  tcpmapping:\n    idle_timeout_ms: 5')).toBe('config.defaults: not honoured: tcpmapping: defaults for resources other than Mappings (httpmapping) are not read');
    expect(refusal('defaults: [add_request_headers]')).toMatch(/^config\.defaults: not honoured: \["add_request_headers"\] is not a map/);
    expect(refusal('defaults:\n  httpmapping: 3')).toBe('config.defaults: not honoured: httpmapping: 3 is not a map of Mapping keys');
  });

  it("a value the Mapping's parser refuses refuses the Module (header injection, pseudo-headers, names that are no token), never one Mapping at a time", () => {
    expect(refusal('defaults:\n  add_request_headers:\n    x-a: "ok\\r\\nx-smuggled: 1"')).toMatch(/^config\.defaults: not honoured: add_request_headers:/);
    expect(refusal('defaults:\n  httpmapping:\n    add_response_headers: [x-a]')).toBe(
      'config.defaults: not honoured: httpmapping.add_response_headers: add_response_headers must be a map of name to value',
    );
    expect(refusal('defaults:\n  remove_request_headers: [":authority"]')).toMatch(/^config\.defaults: not honoured: remove_request_headers:/);
    expect(refusal('defaults:\n  add_request_headers: {"x a": v}')).toBe('config.defaults: not honoured: add_request_headers: add_request_headers: "x a" is not a valid header name');
    expect(refusal('defaults:\n  add_request_headers: null')).toMatch(/^config\.defaults: not honoured: add_request_headers:/);
  });

  it('the compile options carry them only when the Module sets some', () => {
    const base: ModuleBase = { edge: { maxHeaderBytes: 1, maxBodyBytes: 1, trustForwardedHeaders: false, trustedProxies: [] }, compile: { defaultTimeoutMs: 1, regexMaxSize: 200 }, given: [] };
    expect(moduleCompile(base, parseAmbassadorModule(module(KAT_DEFAULTS))).mappingDefaults).toEqual({
      add_request_headers: { fruit: { append: false, value: 'orange' } },
      remove_request_headers: ['x-evil-header'],
    });
    expect('mappingDefaults' in moduleCompile(base, parseAmbassadorModule(module('defaults: {}')))).toBe(false);
  });
});

describe('a Mapping document under the defaults', () => {
  const d = { add_request_headers: { fruit: 'orange' }, remove_request_headers: ['x-evil-header'] };
  it("keeps its own keys, even {} and [] (Emissary's `key in kwargs`), and takes the others", () => {
    expect(withMappingDefaults({ name: 'm' }, d)).toEqual({ name: 'm', ...d });
    expect(withMappingDefaults({ add_request_headers: {}, remove_request_headers: [] }, d)).toEqual({ add_request_headers: {}, remove_request_headers: [] });
    expect(withMappingDefaults({ add_request_headers: { fruit: 'banana' } }, d)).toEqual({ add_request_headers: { fruit: 'banana' }, remove_request_headers: ['x-evil-header'] });
  });
  it('without defaults the document is the same object (nothing paid)', () => {
    const doc = { name: 'm' };
    expect(withMappingDefaults(doc, undefined)).toBe(doc);
    expect(withMappingDefaults(doc, {})).toBe(doc);
    expect(mappingDefaultsPolicy(undefined)).toBeNull();
    expect(mappingDefaultsPolicy({})).toBeNull();
  });
});

describe('the defaults in the routing table', () => {
  const MAPPINGS = [
    'apiVersion: getambassador.io/v2\nkind: Mapping\nname: plain\nprefix: /seldon/ns/custom/plain/\nservice: svc.ns:8000',
    'apiVersion: getambassador.io/v2\nkind: Mapping\nname: own\nprefix: /seldon/ns/custom/own/\nservice: svc.ns:8000\nadd_request_headers:\n  fruit: banana\nremove_request_headers: [x-evilness]',
    'apiVersion: getambassador.io/v2\nkind: Mapping\nname: empty\nprefix: /seldon/ns/custom/empty/\nservice: svc.ns:8000\nadd_request_headers: {}\nremove_request_headers: []',
  ].join('\n---\n');
  const sdep = (name: string, annotations: Record<string, string> = {}): SeldonDeployment => ({
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'ns' },
    spec: { annotations, predictors: [{ name: 'main', graph: { name: 'model', type: 'MODEL' } }] },
  });
  const table = (opts: CompileOptions): RouteTable => buildTable([sdep('iris'), sdep('custom', { 'seldon.io/ambassador-config': MAPPINGS })], opts);
  const at = (t: RouteTable, path: string, kind: 'rest' | 'grpc' = 'rest', md: Record<string, string> = {}): Backend => {
    const r = match(t, { kind, method: 'POST', path, host: 'gw', header: headerGetter(md) }, randomPicker(seededRandom(1)));
    if (!r.ok) throw new Error(`no route for ${path}: ${r.info}`);
    return r.backend;
  };
  const m = parseAmbassadorModule(module(`${KAT_DEFAULTS}\n  add_response_headers: {x-served-by: gw}`));
  const t = table({ ...DEFAULT_COMPILE_OPTIONS, ...(m.mappingDefaults ? { mappingDefaults: m.mappingDefaults } : {}) });
  const edits = (b: Backend) => [b.mapping?.requestHeaders, b.mapping?.responseHeaders];
  const DEFAULTED = [
    { add: [{ name: 'fruit', value: 'orange', append: false }], remove: ['x-evil-header'] },
    { add: [{ name: 'x-served-by', value: 'gw', append: true }], remove: [] },
  ];

  it('a custom Mapping that sets none takes every default; one that sets a key keeps its own for that key only; {} and [] override', () => {
    expect(edits(at(t, '/seldon/ns/custom/plain/'))).toEqual(DEFAULTED);
    expect(edits(at(t, '/seldon/ns/custom/own/'))).toEqual([{ add: [{ name: 'fruit', value: 'banana', append: true }], remove: ['x-evilness'] }, DEFAULTED[1]]);
    expect(edits(at(t, '/seldon/ns/custom/empty/'))).toEqual([{ add: [], remove: [] }, DEFAULTED[1]]);
  });

  it("Seldon's generated routes, REST and gRPC, are Mappings too: they take the defaults", () => {
    expect(edits(at(t, '/seldon/ns/iris/api/v1.0/predictions'))).toEqual(DEFAULTED);
    expect(edits(at(t, '/seldon.protos.Seldon/Predict', 'grpc', { seldon: 'iris', namespace: 'ns' }))).toEqual(DEFAULTED);
  });

  it('without defaults: generated routes and plain Mappings have no policy (nothing to pay)', () => {
    const plain = table(DEFAULT_COMPILE_OPTIONS);
    expect(at(plain, '/seldon/ns/iris/api/v1.0/predictions').mapping).toBeNull();
    expect(at(plain, '/seldon/ns/custom/plain/').mapping).toBeNull();
  });
});
