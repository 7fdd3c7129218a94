/**
 * Emissary's t_mappingtests_default.py, ported: LinkerdHeaderMapping, SameMappingDifferentNamespaces and
 * LongClusterNameMapping (SafeRegexMapping is t_basics.py's, ported beside it). Each `describe` is the KAT
 * class; every test asserts what the kat-server stand-in received.
 *
 * LinkerdHeaderMapping's Module sets `defaults.httpmapping` (add_request_headers, remove_request_headers):
 * every Mapping that does not set the key itself takes the Module's (routing/emissary/module-defaults.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';

const EVIL = { 'x-evil-header': 'evilness', 'x-evilness': 'more evilness' };

describe('LinkerdHeaderMapping (t_mappingtests_default.py)', () => {
  const TARGET = 'linkerdheadermapping-http.default';
  const NOHEADER = 'linkerdheadermapping-noheader.default';
  const LINKERDONLY = 'linkerdheadermapping-addlinkerdonly.default';
  let target: HttpBackend;
  let noHeader: HttpBackend;
  let linkerdOnly: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    [target, noHeader, linkerdOnly] = await Promise.all([startKatBackend('target'), startKatBackend('noheader'), startKatBackend('addlinkerdonly')]);
    kat = await katGateway({
      module: [
        'add_linkerd_headers: true',
        'defaults:',
        '  httpmapping:',
        '      add_request_headers:',
        '          fruit:',
        '              append: False',
        '              value: orange',
        '      remove_request_headers:',
        '      - x-evil-header',
      ],
      mappings: [
        katMapping('linkerdheadermapping-addlinkerdonly', [
          'hostname: "*"',
          'prefix: /target_add_linkerd_header_only/',
          `service: ${LINKERDONLY}`,
          'add_request_headers: {}',
          'remove_request_headers: []',
        ]),
        katMapping('linkerdheadermapping-noheader', ['hostname: "*"', 'prefix: /target_no_header/', `service: ${NOHEADER}`, 'add_linkerd_headers: false']),
        katMapping('linkerdheadermapping-http', [
          'hostname: "*"',
          'prefix: /target/',
          `service: ${TARGET}`,
          'add_request_headers:',
          '  fruit:',
          '    append: False',
          '    value: banana',
          'remove_request_headers:',
          '- x-evilness',
        ]),
      ],
      resolve: { [`${TARGET}:80`]: target.port, [`${NOHEADER}:80`]: noHeader.port, [`${LINKERDONLY}:80`]: linkerdOnly.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await Promise.all([target?.close(), noHeader?.close(), linkerdOnly?.close()]);
  });

  /** The request headers the kat backend echoed to the client: the client sees what the model received. */
  const echoed = (body: Buffer): Record<string, unknown> => (JSON.parse(body.toString('utf8')) as { request: { headers: Record<string, unknown> } }).request.headers;

  it("[0] the Mapping's own edits win over the Module's defaults; the Module's linkerd header: l5d-dst-override <service>:80, fruit banana, x-evilness removed", async () => {
    const r = await katGet(kat.gw.port, '/target/', EVIL);
    expect(r.status).toBe(200);
    expect(target.requests).toHaveLength(1);
    const [got] = target.requests;
    expect(got!.headers['l5d-dst-override']).toBe(`${TARGET}:80`);
    expect(got!.headers['fruit']).toBe('banana');
    expect(got!.headers['x-evil-header']).toBe('evilness');
    expect(got!.headers['x-evilness']).toBeUndefined();
    expect(echoed(r.body)).toMatchObject({ fruit: 'banana', 'x-evil-header': 'evilness' });
    expect(echoed(r.body)).not.toHaveProperty('x-evilness');
  });

  it("[1] a Mapping that sets neither key takes the Module's defaults: fruit orange added, x-evil-header removed; add_linkerd_headers: false, no l5d-dst-override", async () => {
    const r = await katGet(kat.gw.port, '/target_no_header/', EVIL);
    expect(r.status).toBe(200);
    expect(noHeader.requests).toHaveLength(1);
    const [got] = noHeader.requests;
    expect(got!.headers['l5d-dst-override']).toBeUndefined();
    expect(got!.headers['fruit']).toBe('orange');
    expect(got!.headers['x-evil-header']).toBeUndefined();
    expect(got!.headers['x-evilness']).toBe('more evilness');
    expect(echoed(r.body)).toMatchObject({ fruit: 'orange', 'x-evilness': 'more evilness' });
    expect(echoed(r.body)).not.toHaveProperty('x-evil-header');
  });

  it('[2] empty add_request_headers and remove_request_headers override the defaults: the linkerd header only', async () => {
    const r = await katGet(kat.gw.port, '/target_add_linkerd_header_only/', EVIL);
    expect(r.status).toBe(200);
    expect(linkerdOnly.requests).toHaveLength(1);
    const [got] = linkerdOnly.requests;
    expect(got!.headers['l5d-dst-override']).toBe(`${LINKERDONLY}:80`);
    expect(got!.headers['fruit']).toBeUndefined();
    expect(got!.headers['x-evil-header']).toBe('evilness');
    expect(got!.headers['x-evilness']).toBe('more evilness');
  });
});

describe("the Module's defaults beyond the KAT: top-level keys, the class's precedence, answers and Seldon's routes", () => {
  const SERVICE = 'defaults-target.default';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('defaults-target');
    kat = await katGateway({
      module: [
        'defaults:',
        '  add_request_headers: {from: top}',
        '  add_response_headers: {x-answer-default: top}',
        '  remove_response_headers: [content-type]',
        '  httpmapping:',
        '    add_response_headers: {x-answer-default: class}',
      ],
      mappings: [
        katMapping('plain', ['hostname: "*"', 'prefix: /plain/', `service: ${SERVICE}`]),
        katMapping('own', ['hostname: "*"', 'prefix: /own/', `service: ${SERVICE}`, 'add_response_headers: {x-own: mine}', 'remove_response_headers: []']),
      ],
      resolve: { [`${SERVICE}:80`]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it("a Mapping that sets none: the top-level request default, the class's answer default over the top-level one, content-type removed from the answer", async () => {
    const r = await katGet(kat.gw.port, '/plain/', { 'x-case': 'plain' });
    expect(r.status).toBe(200);
    expect(model.requests.filter((q) => q.headers['x-case'] === 'plain').map((q) => q.headers['from'])).toEqual(['top']);
    expect(r.headers['x-answer-default']).toBe('class');
    expect(r.headers['content-type']).toBeUndefined();
  });

  it('a Mapping with its own answer edits keeps them (the defaults of the keys it does not set still apply)', async () => {
    const r = await katGet(kat.gw.port, '/own/', { 'x-case': 'own' });
    expect(r.status).toBe(200);
    expect(model.requests.filter((q) => q.headers['x-case'] === 'own').map((q) => q.headers['from'])).toEqual(['top']);
    expect(r.headers['x-own']).toBe('mine');
    expect(r.headers['x-answer-default']).toBeUndefined();
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
  });
});

describe('SameMappingDifferentNamespaces (t_mappingtests_default.py)', () => {
  const SERVICE = 'samemappingdifferentnamespaces-http.default';
  const N = 'samemappingdifferentnamespaces';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('samemappingdifferentnamespaces-http');
    // One Mapping name in two namespaces: each namespace's SeldonDeployment carries its own.
    const same = (prefix: string): string => katMapping('samemappingdifferentnamespaces-http', ['hostname: "*"', `prefix: ${prefix}`, `service: ${SERVICE}`]);
    kat = await katGateway({
      namespace: 'same-mapping-1',
      mappings: [same(`/${N}-1/`)],
      extra: { 'same-2.yaml': sdep('kat', 'same-mapping-2', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': same(`/${N}-2/`) }) },
      module: null,
      resolve: { [`${SERVICE}:80`]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it.each(['1', '2'])('[%s] /samemappingdifferentnamespaces-%s/: 200 from the target', async (i) => {
    const r = await katGet(kat.gw.port, `/${N}-${i}/`, { 'x-case': i });
    expect(r.status).toBe(200);
    expect(model.requests.filter((q) => q.headers['x-case'] === i).map((q) => q.url)).toEqual(['/']);
  });
});

describe('LongClusterNameMapping (t_mappingtests_default.py)', () => {
  // The KAT's Service is an ExternalName of 63 characters: the gateway dials the name as given (the cluster's DNS
  // answers the ExternalName's target); here --resolve stands for that DNS.
  const SERVICE = 'thisisaverylongservicenameoverwithsixythreecharacters123456789';
  let model: HttpBackend;
  let kat: KatGateway;
  beforeAll(async () => {
    model = await startKatBackend('httpbin');
    kat = await katGateway({
      module: null,
      mappings: [katMapping('longclusternamemapping-httpbin', ['hostname: "*"', 'prefix: /longclusternamemapping-1/', `service: ${SERVICE}`])],
      resolve: { [`${SERVICE}.default:80`]: model.port },
    });
  });
  afterAll(async () => {
    await kat?.stop();
    await model?.close();
  });

  it('[0] /longclusternamemapping-1/: 200 from the service of the 63-character name', async () => {
    const r = await katGet(kat.gw.port, '/longclusternamemapping-1/');
    expect(r.status).toBe(200);
    expect(model.requests.map((q) => q.url)).toEqual(['/']);
  });
});
