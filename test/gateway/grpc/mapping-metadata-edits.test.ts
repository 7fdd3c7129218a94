/**
 * What a hand-written gRPC Mapping changes of a call (docs/routing.md "What a Mapping changes of a
 * request and its answer"), with the real @grpc/grpc-js client and a raw HTTP/2 model that records
 * its header fields as received: `add_request_headers` / `remove_request_headers` on the metadata the
 * model gets, `host_rewrite` / `auto_host_rewrite` on its `:authority`, `add_response_headers` /
 * `remove_response_headers` on the initial metadata the client gets; a shadow gets what the primary gets; the
 * ambassador Module's `suppress_envoy_headers` on both.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeSeldonMessage, grpcClients, grpcFrame, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { grpcMapping } from '../../helpers/mappings.js';
import { answerOk, md, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';

const NS = 'models';

const mapping = (name: string, service: string, extra: string): string => grpcMapping(name, NS, service, [extra]);

const CONFIG = [
  mapping(
    'edits',
    `model.${NS}:9000`,
    'add_request_headers:\n  zoo: {append: false, value: Zoo}\n  aoo: aoo\nremove_request_headers: [x-drop]\nhost_rewrite: model.internal\nadd_response_headers:\n  x-route: edits\n  x-model: {append: false, value: replaced}\nremove_response_headers: [x-secret]',
  ),
  mapping('auto', `model.${NS}:9000`, 'auto_host_rewrite: true'),
  [
    'apiVersion: getambassador.io/v2',
    'kind: Mapping',
    'name: edits-copy',
    'grpc: true',
    'prefix: /seldon.protos.Seldon/',
    'rewrite: /seldon.protos.Seldon/',
    'headers:',
    '  seldon: edits',
    `  namespace: ${NS}`,
    `service: shadow.${NS}:9000`,
    'shadow: true',
  ].join('\n'),
].join('\n---\n');

/** The fields a model received that the test compares: pseudo-header fields and the client library's own left out. */
const OWN = new Set([
  ':method',
  ':scheme',
  ':path',
  'te',
  'content-type',
  'user-agent',
  'grpc-accept-encoding',
  'grpc-encoding',
  'accept-encoding',
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'grpc-timeout',
]);
function fields(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (!OWN.has(raw[i]!)) out.push(`${raw[i]}: ${raw[i + 1]}`);
  return out;
}

describe('gRPC Mapping metadata edits', () => {
  let model: RawUpstream;
  let shadow: RawUpstream;
  let gw: TestGateway;
  let clients: GrpcClients;

  beforeAll(async () => {
    model = await startRawUpstream((s) => {
      if (s.destroyed) return;
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-model': 'model', 'x-secret': 's' }, { waitForTrailers: true });
      s.once('wantTrailers', () => s.sendTrailers({ 'grpc-status': '0' }));
      s.resume();
      s.on('end', () => s.end(grpcFrame(encodeSeldonMessage({ strData: 'model' }))));
    });
    shadow = await startRawUpstream((s) => answerOk(s, 'shadow'));
    gw = await startTestGateway({
      manifests: { 'edits.yaml': sdep('edits', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG }) },
      resolve: { [`model.${NS}:9000`]: model.port, [`shadow.${NS}:9000`]: shadow.port },
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await model?.close();
    await shadow?.close();
  });

  it('request edits and host_rewrite reach the model and its shadow; answer edits reach the client’s initial metadata', async () => {
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'edits', namespace: NS, zoo: 'ZooZ', aoo: 'AooA', 'x-drop': 'gone', 'x-keep': 'kept' }));
    await waitFor(() => model.rawStreams.length === 1 && shadow.rawStreams.length === 1);
    expect(model.streams[0]![':authority']).toBe('model.internal');
    expect(shadow.streams[0]![':authority']).toBe('model.internal-shadow');
    const expected = [':authority: model.internal', 'seldon: edits', `namespace: ${NS}`, 'zoo: Zoo', 'aoo: AooA', 'aoo: aoo', 'x-keep: kept'];
    const got = fields(model.rawStreams[0]!);
    expect([...got].sort()).toEqual([...expected].sort());
    // Repeated fields keep their order: the client's first, the added one after.
    expect(got.filter((l) => l.startsWith('aoo:'))).toEqual(['aoo: AooA', 'aoo: aoo']);
    expect(
      fields(shadow.rawStreams[0]!)
        .filter((l) => !l.startsWith(':authority'))
        .sort(),
    ).toEqual(expected.filter((l) => !l.startsWith(':authority')).sort());
    expect(o.ok).toBe(true);
    if (!o.ok) return;
    expect(o.result.headers.get('x-route')).toEqual(['edits']);
    expect(o.result.headers.get('x-model')).toEqual(['replaced']);
    expect(o.result.headers.get('x-secret')).toEqual([]);
  });

  it('auto_host_rewrite: :authority is the service’s host name', async () => {
    const before = model.streams.length;
    const o = await predict(clients, { strData: 'x' }, md({ seldon: 'auto', namespace: NS }));
    expect(o.ok).toBe(true);
    expect(model.streams[before]![':authority']).toBe(`model.${NS}`);
  });
});

describe("the Module's suppress_envoy_headers on gRPC (SuppressEnvoyHeadersTest)", () => {
  let model: RawUpstream;
  let dir: string;
  const gateways: { gw: TestGateway; clients: GrpcClients }[] = [];

  beforeAll(async () => {
    model = await startRawUpstream((s) => answerOk(s, 'model'));
    dir = mkdtempSync(join(tmpdir(), 'sgw-grpc-suppress-'));
    const file = join(dir, 'module.yaml');
    writeFileSync(file, 'apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n  suppress_envoy_headers: true\n');
    for (const args of [['--ambassador-module', file], []]) {
      const gw = await startTestGateway({
        manifests: { 'plain.yaml': sdep('plain', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': mapping('plain', `model.${NS}:9000`, 'timeout_ms: 5000') }) },
        resolve: { [`model.${NS}:9000`]: model.port },
        args,
      });
      gateways.push({ gw, clients: grpcClients(`127.0.0.1:${gw.port}`) });
    }
  });
  afterAll(async () => {
    for (const { gw, clients } of gateways) {
      clients.close();
      await gw.stop();
    }
    await model?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('with it, the client gets no x-envoy-upstream-service-time and the model no x-envoy-* field; without it, the time is there', async () => {
    const times: string[][] = [];
    for (const { clients } of gateways) {
      const o = await predict(clients, { strData: 'x' }, md({ seldon: 'plain', namespace: NS }));
      expect(o.ok).toBe(true);
      if (o.ok) times.push(o.result.headers.get('x-envoy-upstream-service-time').map(String));
    }
    expect(times[0]).toEqual([]);
    expect(times[1]).toHaveLength(1);
    expect(times[1]![0]).toMatch(/^\d+$/);
    expect(model.rawStreams.flatMap((raw) => raw.filter((_, i) => i % 2 === 0 && raw[i]!.startsWith('x-envoy-')))).toEqual([]);
  });
});
