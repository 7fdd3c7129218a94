/**
 * Emissary's t_mappingtests_default.py, ported: LinkerdHeaderMapping, SameMappingDifferentNamespaces and
 * LongClusterNameMapping (SafeRegexMapping is t_basics.py's, ported beside it). Each `describe` is the KAT
 * class; every test asserts what the kat-server stand-in received.
 *
 * LinkerdHeaderMapping's Module also sets `defaults.httpmapping` (add_request_headers, remove_request_headers
 * for every Mapping that sets none): the gateway does not read a Module's `defaults` and refuses such a Module
 * whole, with the reason, rather than serve its Mappings without them. The class's checks that do not lean on
 * the defaults (l5d-dst-override from the Module's add_linkerd_headers, a Mapping's own false, a Mapping's own
 * header edits) run under the Module without `defaults`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { sdep } from '../../helpers/gateway.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';
import { parseAmbassadorModule } from '../../../routing/emissary/module.js';

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
      module: ['add_linkerd_headers: true'],
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

  it("the KAT's Module, with defaults.httpmapping, is refused whole with the reason", () => {
    const text = [
      'apiVersion: getambassador.io/v3alpha1',
      'kind: Module',
      'name: ambassador',
      'config:',
      '  add_linkerd_headers: true',
      '  defaults:',
      '    httpmapping:',
      '      add_request_headers:',
      '        fruit:',
      '          append: False',
      '          value: orange',
      '      remove_request_headers:',
      '      - x-evil-header',
    ].join('\n');
    expect(() => parseAmbassadorModule(text)).toThrow('config.defaults: not honoured: Module defaults for other resources are not read');
  });

  it("[0] the Mapping's own edits and the Module's linkerd header: l5d-dst-override <service>:80, fruit banana, x-evilness removed", async () => {
    expect((await katGet(kat.gw.port, '/target/', EVIL)).status).toBe(200);
    const [got] = target.requests;
    expect(got!.headers['l5d-dst-override']).toBe(`${TARGET}:80`);
    expect(got!.headers['fruit']).toBe('banana');
    expect(got!.headers['x-evil-header']).toBe('evilness');
    expect(got!.headers['x-evilness']).toBeUndefined();
  });

  it('[1] add_linkerd_headers: false on the Mapping: no l5d-dst-override; the headers as sent', async () => {
    expect((await katGet(kat.gw.port, '/target_no_header/', EVIL)).status).toBe(200);
    const [got] = noHeader.requests;
    expect(got!.headers['l5d-dst-override']).toBeUndefined();
    expect(got!.headers['x-evilness']).toBe('more evilness');
    expect(got!.headers['x-evil-header']).toBe('evilness');
  });

  it('[2] empty add_request_headers and remove_request_headers: the linkerd header only', async () => {
    expect((await katGet(kat.gw.port, '/target_add_linkerd_header_only/', EVIL)).status).toBe(200);
    const [got] = linkerdOnly.requests;
    expect(got!.headers['l5d-dst-override']).toBe(`${LINKERDONLY}:80`);
    expect(got!.headers['x-evil-header']).toBe('evilness');
    expect(got!.headers['x-evilness']).toBe('more evilness');
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
