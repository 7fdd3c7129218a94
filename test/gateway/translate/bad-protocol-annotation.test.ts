/**
 * A bad `seldon.io/gateway-protocol` degrades its deployment alone (docs/protocol-translation.md), on
 * the Kubernetes source (the fake API server), over real sockets: the reason is in /routes, the
 * log and a Warning Event on the SeldonDeployment; the deployment is served untranslated, byte for
 * byte, while a deployment beside it with a good annotation keeps translating.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parseConfig } from '../../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../../gateway/process/serve.js';
import { headerValue, startRecordingUpstream, type RecordedRequest, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { seldonDeployment, startFakeKubeApi, tempDir, until, writeKubeconfig, type FakeKubeApi } from '../../fixtures/fake-kube-api.js';

const PROTOCOL = 'seldon.io/gateway-protocol';
const SENT = '{"data":{"ndarray":[[1,2]]}}';
const spec = { protocol: 'v2', predictors: [{ name: 'default', graph: { name: 'model', type: 'MODEL' } }] };

/** A v2 model's answer to an inference; anything else the model's 404, as MLServer answers a path it does not serve. */
function model(req: RecordedRequest) {
  if (req.target === '/v2/models/model/infer')
    return { headers: [['Content-Type', 'application/json']] as [string, string][], body: '{"model_name":"model","outputs":[{"name":"o","shape":[1,2],"datatype":"INT64","data":[1,2]}]}' };
  return { statusLine: 'HTTP/1.1 404 Not Found', headers: [['Content-Type', 'application/json']] as [string, string][], body: '{"detail":"Not Found"}' };
}

describe('a bad seldon.io/gateway-protocol on the Kubernetes source', () => {
  let api: FakeKubeApi;
  let upstream: RecordingUpstream;
  let gw: Gateway;
  let tmp: ReturnType<typeof tempDir>;
  const logs: Record<string, unknown>[] = [];

  beforeAll(async () => {
    upstream = await startRecordingUpstream({ name: 'model', responder: model });
    api = await startFakeKubeApi();
    tmp = tempDir();
    api.upsert('seldondeployments', seldonDeployment('good', 'models', spec, { [PROTOCOL]: '{}' }));
    api.upsert('seldondeployments', seldonDeployment('bad', 'models', spec, { [PROTOCOL]: 'speaks: grpc' }));
    const resolve = ['good', 'bad'].flatMap((n) => ['--resolve', `${n}-default.models:8000=127.0.0.1:${upstream.port}`]);
    const config = parseConfig(
      'serve',
      ['--kubernetes', '--kubeconfig', writeKubeconfig(tmp.dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off', ...resolve],
      {},
    );
    const sink = { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) };
    gw = await startGateway(config, { logger: pino({ level: 'info' }, sink) });
    await until(() => gw.ready(), 5000, 'ready');
  });
  afterAll(async () => {
    await gw?.close();
    await api?.close();
    await upstream?.close();
    tmp?.cleanup();
  });

  const post = async (name: string): Promise<{ status: number; body: string; translated: string | undefined }> => {
    const r = await request(`http://127.0.0.1:${gw.port}/seldon/models/${name}/api/v1.0/predictions`, { method: 'POST', body: SENT, headers: { 'content-type': 'application/json' } });
    const translated = r.headers['x-seldon-translated'];
    return { status: r.statusCode, body: await r.body.text(), translated: typeof translated === 'string' ? translated : undefined };
  };

  it('degrades that deployment alone: the reason in /routes, the log and a Warning Event; it goes untranslated, byte for byte, the good one translated', async () => {
    const routes = (await (await request(`http://127.0.0.1:${gw.adminPort}/routes`)).body.json()) as { deployments: { name: string; state: string; reasons: string[] }[] };
    const bad = routes.deployments.find((d) => d.name === 'bad')!;
    expect(bad.state).toBe('degraded');
    expect(bad.reasons.join()).toMatch(/seldon.io\/gateway-protocol: speaks must be seldon or v2.*served untranslated/);
    expect(routes.deployments.find((d) => d.name === 'good')!.state).toBe('accepted');

    const line = logs.find((l) => l['msg'] === 'SeldonDeployment degraded' && l['deployment'] === 'models/bad');
    expect(line, 'a log line for the degraded deployment').toBeDefined();
    expect(String(line!['reasons'])).toMatch(/gateway-protocol: speaks must be seldon or v2/);
    expect(logs.some((l) => l['msg'] === 'SeldonDeployment degraded' && l['deployment'] === 'models/good')).toBe(false);

    await until(() => api.eventPosts.some((e) => (e as { involvedObject?: { name?: string } }).involvedObject?.name === 'bad'), 5000, 'Event posted');
    const events = api.eventPosts as { reason?: string; type?: string; message?: string; involvedObject?: { name?: string; kind?: string } }[];
    const ev = events.find((e) => e.involvedObject?.name === 'bad')!;
    expect(ev).toMatchObject({ type: 'Warning', reason: 'RouteDegraded', involvedObject: { kind: 'SeldonDeployment', name: 'bad' } });
    expect(ev.message).toMatch(/gateway-protocol: speaks must be seldon or v2/);
    expect(events.some((e) => e.involvedObject?.name === 'good')).toBe(false);

    // Untranslated: the request as it came, the model's own answer (its 404 for a Seldon path).
    const before = upstream.requests.length;
    const b = await post('bad');
    expect(b.translated).toBeUndefined();
    expect(b.status).toBe(404);
    const got = upstream.requests.slice(before).filter((r) => r.method === 'POST');
    expect(got.map((r) => [r.target, r.body.toString(), headerValue(r.headers, 'content-length')])).toEqual([['/api/v1.0/predictions', SENT, String(SENT.length)]]);

    const g = await post('good');
    expect(g.translated).toBe('seldon->v2');
    expect(g.status).toBe(200);
    expect(g.body).toBe('{"data":{"names":["t:0","t:1"],"ndarray":[[1,2]]},"meta":{}}');
    expect(
      upstream.requests
        .filter((r) => r.method === 'POST')
        .at(-1)!
        .body.toString(),
    ).toBe('{"inputs":[{"name":"input-0","shape":[1,2],"datatype":"INT64","data":[1,2]}]}');
  });
});
