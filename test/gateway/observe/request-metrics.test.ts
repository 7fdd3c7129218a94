/**
 * The per-request and per-connection metrics on a real gateway, read from its admin /metrics after
 * real traffic: `seldon_gateway_request_duration_seconds` (every REST request and gRPC call, by
 * the route's namespace, deployment, predictor, protocol and code class; unrouted ones with empty
 * route labels), `seldon_gateway_open_connections` by listener and protocol, and the bytes
 * received and sent, compared with what the test's own sockets sent and read.
 */
import { once } from 'node:events';
import net from 'node:net';
import { Client } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { md, predict as grpcPredict } from '../../helpers/grpc.js';
import { sdep } from '../../helpers/gateway.js';
import { waitUntil } from '../../helpers/wait.js';
import { body, metricSum, scrape, startObservedGateway, type ObservedGateway, type PromSample } from '../../helpers/observability.js';

const DURATION = 'seldon_gateway_request_duration_seconds';
const BOUNDS = ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '30', '+Inf'];

/** Every duration series as `deployment protocol class` → its count, with the histogram's own consistency checked. */
function durationCounts(samples: readonly PromSample[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of samples.filter((s) => s.name === `${DURATION}_count`)) {
    const l = c.labels;
    const same = (s: PromSample): boolean => ['namespace', 'deployment', 'predictor', 'protocol', 'code_class'].every((k) => s.labels[k] === l[k]);
    const buckets = samples.filter((s) => s.name === `${DURATION}_bucket` && same(s));
    expect(buckets.map((b) => b.labels.le)).toEqual(BOUNDS);
    for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
    expect(buckets[buckets.length - 1]!.value).toBe(c.value);
    out[`${l.namespace}/${l.deployment}/${l.predictor} ${l.protocol} ${l.code_class}`] = c.value;
  }
  return out;
}

describe('request duration, connections and bytes on /metrics', () => {
  let rest: HttpBackend;
  let grpcUp: GrpcBackend;
  let gw: ObservedGateway;

  beforeAll(async () => {
    rest = await startHttpBackend({ name: 'iris-rest' });
    grpcUp = await startGrpcBackend({ name: 'iris-grpc' });
    gw = await startObservedGateway({
      manifests: { 'iris.yaml': sdep('iris', 'm', { predictors: [{ name: 'main' }] }) },
      resolve: { 'iris-main.m:8000': rest.port, 'iris-main.m:5001': grpcUp.port },
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await rest?.close();
    await grpcUp?.close();
  });

  it('counts every REST request and gRPC call once, by code class and protocol; unrouted ones without a route', async () => {
    const client = new Client(gw.url);
    const send = async (path: string): Promise<number> => {
      const r = await client.request({ method: 'POST', path, headers: { 'content-type': 'application/json' }, body });
      await r.body.text();
      return r.statusCode;
    };
    const iris = '/seldon/m/iris/api/v1.0/predictions';
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await send(iris));
    statuses.push(await send(`${iris}?sleep=150`));
    for (let i = 0; i < 3; i++) statuses.push(await send(`${iris}?status=404`));
    for (let i = 0; i < 2; i++) statuses.push(await send(`${iris}?status=503`));
    for (let i = 0; i < 2; i++) statuses.push(await send('/seldon/m/nobody/api/v1.0/predictions'));
    expect(statuses).toEqual([200, 200, 200, 200, 200, 200, 404, 404, 404, 503, 503, 404, 404]);

    const clients: GrpcClients = grpcClients(`127.0.0.1:${gw.port}`);
    const meta = md({ seldon: 'iris', namespace: 'm' });
    const codes: (number | undefined)[] = [];
    const call = async (strData: string, metadata = meta): Promise<void> => {
      const o = await grpcPredict(clients, { strData }, metadata);
      codes.push(o.ok ? 0 : o.error.code);
    };
    for (let i = 0; i < 4; i++) await call('hello');
    for (let i = 0; i < 2; i++) await call('fail:3:bad input'); // INVALID_ARGUMENT: a 4xx
    await call('fail:14:model down'); // UNAVAILABLE: a 5xx
    await call('hello', md({ seldon: 'nobody', namespace: 'm' })); // no route: UNIMPLEMENTED, a 5xx

    // Both connections are open now: one HTTP/1.1 (undici's Client), one h2c (grpc-js).
    const during = await scrape(gw.adminUrl);
    expect(metricSum(during, 'seldon_gateway_open_connections', { listener: 'public', protocol: 'http1' })).toBe(1);
    expect(metricSum(during, 'seldon_gateway_open_connections', { listener: 'public', protocol: 'http2' })).toBe(1);
    clients.close();
    await client.close();
    expect(codes).toEqual([0, 0, 0, 0, 3, 3, 14, 12]);

    const samples = await scrape(gw.adminUrl);
    expect(durationCounts(samples)).toEqual({
      'm/iris/main rest 2xx': 6,
      'm/iris/main rest 4xx': 3,
      'm/iris/main rest 5xx': 2,
      '// rest 4xx': 2,
      'm/iris/main grpc 2xx': 4,
      'm/iris/main grpc 4xx': 2,
      'm/iris/main grpc 5xx': 1,
      '// grpc 5xx': 1,
    });
    // The routed ones are the requests requests_total counted, code for code.
    for (const protocol of ['rest', 'grpc']) {
      expect(metricSum(samples, `${DURATION}_count`, { deployment: 'iris', protocol })).toBe(metricSum(samples, 'seldon_gateway_requests_total', { deployment: 'iris', protocol, kind: 'primary' }));
    }
    // The request the model took 150 ms over cannot have been answered in 100 ms or less.
    const le = (bound: string): number => metricSum(samples, `${DURATION}_bucket`, { deployment: 'iris', protocol: 'rest', code_class: '2xx', le: bound });
    expect(le('0.1')).toBeLessThanOrEqual(5);
    expect(le('+Inf')).toBe(6);
    expect(metricSum(samples, `${DURATION}_sum`, { deployment: 'iris', protocol: 'rest', code_class: '2xx' })).toBeGreaterThanOrEqual(0.15);

    // Closed connections leave the gauge, whose series stay at 0: a gauge that vanished at zero could not be alerted on.
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_open_connections') === 0, 5000);
    const text = await (await fetch(`${gw.adminUrl}/metrics`)).text();
    expect(text).toContain('seldon_gateway_open_connections{listener="public",protocol="http1"} 0\n');
    expect(text).toContain('seldon_gateway_open_connections{listener="public",protocol="http2"} 0\n');
  });

  it('counts the bytes each connection read and wrote, and a connection that sent nothing yet as unknown', async () => {
    const before = await scrape(gw.adminUrl);
    const silent = net.connect(gw.port, '127.0.0.1');
    await once(silent, 'connect');
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_open_connections', { listener: 'public', protocol: 'unknown' }) === 1, 5000);

    const request = Buffer.from(
      `POST /seldon/m/iris/api/v1.0/predictions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`,
    );
    const s = net.connect(gw.port, '127.0.0.1');
    await once(s, 'connect');
    let answer = Buffer.alloc(0);
    s.on('data', (d: Buffer) => (answer = Buffer.concat([answer, d])));
    s.write(request); // `connection: close`: the gateway closes once it has answered
    await once(s, 'close');
    expect(answer.toString('latin1')).toMatch(/^HTTP\/1\.1 200 /);
    silent.destroy();
    await waitUntil(async () => metricSum(await scrape(gw.adminUrl), 'seldon_gateway_open_connections') === 0, 5000);

    const after = await scrape(gw.adminUrl);
    const delta = (name: string): number => metricSum(after, name, { listener: 'public' }) - metricSum(before, name, { listener: 'public' });
    expect(delta('seldon_gateway_received_bytes_total')).toBe(request.length);
    expect(delta('seldon_gateway_sent_bytes_total')).toBe(answer.length);
  });
});
