/**
 * gRPC mirroring: shadows get a copy of unary calls and client streams (same path, metadata and
 * body, `:authority` with `-shadow`); what the shadow does never reaches the client.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients, type StreamRequest } from '../../fixtures/grpc-backend.js';
import { answeredBy, md, predict, startRawUpstream, type RawUpstream } from '../../helpers/grpc.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/net.js';

const withShadow = (name: string): string => sdep(name, 'models', { predictors: [{ name: 'main' }, { name: 'audit', shadow: true }] });
const meta = (seldon: string, extra: Record<string, string> = {}): grpc.Metadata => md({ seldon, namespace: 'models', ...extra });

describe('gRPC shadows', () => {
  let main: GrpcBackend;
  let audit: GrpcBackend;
  let failing: RawUpstream;
  let silent: RawUpstream;
  let gw: TestGateway;
  let clients: GrpcClients;

  const shadowCount = async (deployment: string, result: string): Promise<number> => {
    const text = await gw.metrics.registry.getSingleMetricAsString('seldon_gateway_shadow_requests_total');
    const m = new RegExp(`deployment="${deployment}",predictor="audit",protocol="grpc",result="${result}"} (\\d+)`).exec(text);
    return m ? Number(m[1]) : 0;
  };

  beforeAll(async () => {
    main = await startGrpcBackend({ name: 'main' });
    audit = await startGrpcBackend({ name: 'audit' });
    failing = await startRawUpstream((s) => {
      s.resume();
      s.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '13', 'grpc-message': 'shadow broke' }, { endStream: true });
    });
    silent = await startRawUpstream((s) => s.resume()); // never answers
    const dead = await freePort();
    gw = await startTestGateway({
      manifests: {
        'fraud.yaml': withShadow('fraud'),
        'failing.yaml': withShadow('failing'),
        'dead.yaml': withShadow('dead'),
        'silent.yaml': sdep('silent', 'models', { predictors: [{ name: 'main' }, { name: 'audit', shadow: true }] }, { 'seldon.io/grpc-timeout': '2000' }),
        'plain.yaml': sdep('plain', 'models', { predictors: [{ name: 'main' }] }),
      },
      resolve: {
        'fraud-main.models:5001': main.port,
        'fraud-audit.models:5001': audit.port,
        'failing-main.models:5001': main.port,
        'failing-audit.models:5001': failing.port,
        'dead-main.models:5001': main.port,
        'dead-audit.models:5001': dead,
        'silent-main.models:5001': main.port,
        'silent-audit.models:5001': silent.port,
        'plain-main.models:5001': main.port,
      },
      args: ['--shadow-max-in-flight', '5', '--shadow-max-body', '64KiB'],
    });
    clients = grpcClients(`127.0.0.1:${gw.port}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    for (const u of [main, audit, failing, silent]) await u?.close();
  });

  it('mirrors a unary call: same method, metadata and body, :authority with -shadow', async () => {
    const before = audit.calls.length;
    const o = await predict(clients, { strData: 'mirror me' }, meta('fraud', { 'x-trace': 't1' }));
    expect(answeredBy(o)).toBe('main');
    await waitFor(() => audit.calls.length > before, 2000);
    const call = audit.calls[before]!;
    expect(call.method).toBe('/seldon.protos.Seldon/Predict');
    expect(call.authority).toBe(`127.0.0.1-shadow:${gw.port}`);
    expect(call.metadata).toMatchObject({ seldon: 'fraud', namespace: 'models', 'x-trace': 't1' });
    await waitFor(() => main.calls.length > 0);
    expect(await shadowCount('fraud', 'mirrored')).toBeGreaterThanOrEqual(1);
  });

  it('mirrors a client stream once it has ended', async () => {
    const before = audit.calls.length;
    const reply = await new Promise<StreamRequest>((resolve, reject) => {
      const call = clients.streams.ClientStream(meta('fraud'), (err, v) => (err ? reject(err) : resolve(v!)));
      for (let i = 0; i < 3; i++) call.write({ seq: i, payload: Buffer.alloc(100) });
      call.end();
    });
    expect(reply).toMatchObject({ count: 3, payloadBytes: 300 });
    await waitFor(() => audit.calls.some((c, i) => i >= before && c.method === '/seldon.protos.test.Streams/ClientStream'), 2000);
  });

  it('does not mirror a request over the body limit, and counts it', async () => {
    const before = audit.calls.length;
    const o = await predict(clients, { binData: Buffer.alloc(100_000, 1) }, meta('fraud'));
    expect(answeredBy(o)).toBe('main');
    expect(await shadowCount('fraud', 'dropped_body_size')).toBe(1);
    // Then a small one, which is mirrored: once its copy has arrived, a copy of the big one would have too.
    expect(answeredBy(await predict(clients, { strData: 'small' }, meta('fraud')))).toBe('main');
    await waitFor(() => audit.calls.length > before, 2000);
    expect(audit.calls.length - 1).toBe(before);
  });

  it("a failing or unreachable shadow's outcome never reaches the client", async () => {
    for (const name of ['failing', 'dead']) {
      for (let i = 0; i < 5; i++) {
        const o = await predict(clients, { strData: `call ${i}` }, meta(name));
        expect(o.ok).toBe(true);
        expect(answeredBy(o)).toBe('main');
        if (o.ok) {
          expect(o.result.trailers.get('grpc-message')).toEqual([]);
          expect(o.result.headers.get('x-backend')).toEqual(['main']);
        }
      }
    }
    await waitFor(() => failing.streams.length >= 5, 2000);
    const dead = await shadowCount('dead', 'failed');
    expect(dead).toBe(5);
  });

  it('a silent shadow neither slows nor holds the primary; mirrors beyond the in-flight bound are dropped', async () => {
    const timed = async (seldon: string): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < 20; i++) {
        const t0 = performance.now();
        const o = await predict(clients, { strData: 'x' }, meta(seldon));
        out.push(performance.now() - t0);
        expect(answeredBy(o)).toBe('main');
      }
      return out.sort((a, b) => a - b);
    };
    const base = await timed('plain');
    const shadowed = await timed('silent');
    // A primary held by its mirror would take the mirror's 2 s timeout; none comes close, and the
    // median stays in the no-shadow range (loose bounds: the machine may be shared).
    expect(shadowed[19]!).toBeLessThan(500);
    expect(shadowed[10]!).toBeLessThan(3 * base[10]! + 10);
    await waitFor(() => silent.streams.length === 5, 2000);
    expect(await shadowCount('silent', 'dropped_in_flight')).toBe(15);
  });
});
