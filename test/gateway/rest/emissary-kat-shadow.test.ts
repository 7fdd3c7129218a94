/**
 * Emissary's t_shadow.py, ported: ShadowTestCANFLAKE's five Mappings (the target over https, a shadow of
 * /mark/, a shadow of /weighted-mark/ with weight 10, and /check/ straight to the shadow), and ShadowBackend,
 * the KAT's test-shadow image: a server that tallies /mark/<bucket> calls, answers them with X-Shadowed, and
 * reports the tallies on /check/. The KAT's checks: no mark answer carries X-Shadowed (the shadow's answer
 * never reaches the client); every bucket of /mark/ got its 10 copies; some /weighted-mark/ copies arrived.
 * Here also what the target received, and that the weight held (fewer copies than requests). The gateway's
 * random source is seeded (--random-seed): the weighted pick is the same on every run.
 */
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend, type HttpHandler } from '../../fixtures/http-backend.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { katAnswer, katGateway, katGet, katMapping, type KatGateway } from '../../helpers/kat.js';

const TARGET = 'shadowtestcanflake-target.default';
const SHADOW = 'shadowtestcanflake-shadow.default';
const N = 'shadowtestcanflake';

/** test-shadow: /mark/<bucket> tallied and answered with X-Shadowed; /check/ answers the tallies. */
function shadowServer(): { handler: HttpHandler; tallies: Map<string, number> } {
  const tallies = new Map<string, number>();
  return {
    tallies,
    handler: (req, res) => {
      const mark = /^\/mark\/(\d+)$/.exec(req.url ?? '');
      if (mark) tallies.set(mark[1]!, (tallies.get(mark[1]!) ?? 0) + 1);
      const body = mark ? 'marked' : JSON.stringify(Object.fromEntries(tallies));
      res.writeHead(200, { 'content-type': 'application/json', 'x-shadowed': 'true', 'content-length': Buffer.byteLength(body) }).end(body);
    },
  };
}

describe('ShadowTestCANFLAKE and ShadowBackend (t_shadow.py)', () => {
  let target: https.Server;
  const targetGot: { url: string; host: string | undefined }[] = [];
  let shadow: HttpBackend;
  let tallies: Map<string, number>;
  let kat: KatGateway;
  /** seldon_gateway_shadow_requests_total over every outcome: the copies that have settled. */
  const settledCopies = async (): Promise<number> => {
    const text = await kat.gw.metrics.registry.getSingleMetricAsString('seldon_gateway_shadow_requests_total');
    return text
      .split('\n')
      .filter((l) => l.startsWith('seldon_gateway_shadow_requests_total{'))
      .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  };
  const answers: { url: string; status: number; shadowed: unknown; backend: string }[] = [];

  beforeAll(async () => {
    const leaf = makeCa(certDir()).issue({ cn: TARGET, san: [TARGET], serial: 2 });
    const answer = katAnswer('shadowtestcanflake-target');
    target = https.createServer({ cert: leaf.cert, key: leaf.key }, (req, res) => {
      targetGot.push({ url: req.url!, host: req.headers.host });
      answer(req, res);
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const s = shadowServer();
    tallies = s.tallies;
    shadow = await startHttpBackend({ name: 'shadow', handler: s.handler });
    const route = (name: string, path: string, service: string, extra: string[] = []): string =>
      katMapping(`${N}-${name}`, ['hostname: "*"', `prefix: /${N}/${path}/`, `rewrite: /${path === 'check' ? 'check' : 'mark'}/`, `service: ${service}`, ...extra]);
    kat = await katGateway({
      module: null,
      mappings: [
        route('target', 'mark', `https://${TARGET}`),
        route('weighted-target', 'weighted-mark', `https://${TARGET}`),
        route('shadow', 'mark', SHADOW, ['shadow: true']),
        route('weighted-shadow', 'weighted-mark', SHADOW, ['weight: 10', 'shadow: true']),
        route('checkshadow', 'check', SHADOW),
      ],
      resolve: { [`${TARGET}:443`]: (target.address() as AddressInfo).port, [`${SHADOW}:80`]: shadow.port },
      args: ['--random-seed', '7'],
    });
    // The KAT's queries: 100 to /mark/<0-9>, 500 to /weighted-mark/<100-109>.
    for (let i = 0; i < 600; i++) {
      const url = i < 100 ? `/${N}/mark/${i % 10}` : `/${N}/weighted-mark/${(i % 10) + 100}`;
      const r = await katGet(kat.gw.port, url);
      answers.push({ url, status: r.status, shadowed: r.headers['x-shadowed'], backend: (JSON.parse(r.body.toString()) as { backend: string }).backend });
    }
  });
  afterAll(async () => {
    await kat?.stop();
    await shadow?.close();
    target?.closeAllConnections();
    await new Promise((r) => target?.close(r));
  });

  it('every mark answer is the target’s, with no X-Shadowed: the shadow’s answer never reaches the client', () => {
    expect(answers.filter((a) => a.status !== 200 || a.backend !== 'shadowtestcanflake-target' || a.shadowed !== undefined)).toEqual([]);
    // The target got each query once, on the rewritten path, over TLS.
    expect(targetGot.map((g) => g.url)).toEqual(answers.map((a) => `/mark/${a.url.slice(a.url.lastIndexOf('/') + 1)}`));
  });

  it('phase 2 /check/: buckets 0–9 have 10 copies each; the weighted buckets some, fewer than their 500 requests', async () => {
    // Copies are fire-and-forget, each sent as its request ended: wait until the /mark/ ones are in and every
    // copy the shadow got has settled in the gateway's count.
    await expect.poll(() => [...Array(10).keys()].reduce((n, b) => n + (tallies.get(String(b)) ?? 0), 0), { timeout: 10_000 }).toBe(100);
    await expect.poll(async () => (await settledCopies()) - shadow.requests.length, { timeout: 10_000 }).toBe(0);
    const r = await katGet(kat.gw.port, `/${N}/check/`);
    expect(r.status).toBe(200);
    const data = JSON.parse(r.body.toString()) as Record<string, number>;
    for (let b = 0; b < 10; b++) expect(data[String(b)], `bucket ${b}`).toBe(10);
    const weighted = [...Array(10).keys()].reduce((n, b) => n + (data[String(b + 100)] ?? 0), 0);
    expect(weighted).toBeGreaterThan(0);
    expect(weighted).toBeLessThan(150);
    // What the shadow received: the rewritten path and the client's Host with -shadow after its host name (Envoy's).
    const marks = shadow.requests.filter((q) => q.url.startsWith('/mark/'));
    expect(marks).toHaveLength(100 + weighted);
    expect(new Set(marks.map((q) => `${q.method} ${q.headers.host}`))).toEqual(new Set([`GET 127.0.0.1-shadow:${kat.gw.port}`]));
  });
});
