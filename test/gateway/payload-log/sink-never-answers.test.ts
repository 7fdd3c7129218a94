/**
 * A sink that never answers, without Redis (docs/payload-logging.md#delivery): logging never holds
 * a prediction. Through one real gateway, predictions to a logged deployment and to one without
 * logging, interleaved on one connection in the same run:
 *
 * - logging adds no tail: the two are sent as pairs (one of each, back to back, which goes first
 *   alternating), and the pairs where the logged one took more than 1 ms longer are no more than
 *   those where the plain one did (a sign test), within three standard deviations and a fifth of the
 *   pairs that differ by that much. A machine's stalls land on either member of a pair at random; a
 *   hold of logging's lands on the logged one only: every logged request held is 2,500 pairs, 1% of
 *   them held 1 ms is 25, which a quiet machine (a few dozen pairs split, a bound of about 25) shows.
 *   The fifth is for a machine whose every core is taken: a fifth of all pairs then differ by over
 *   1 ms, and logging's own CPU (tens of microseconds a request) costs a time slice now and then, on
 *   the logged side only. (Two p99s compared directly, even block by block, are a handful of samples
 *   each: on such a machine they differed by 3 ms with logging's own cost 0.)
 * - the events wait in memory under the sink's `queueBytes` at every look, and what does not fit
 *   is dropped and counted (`seldon_gateway_log_drops_total{reason="overflow"}`).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metricSum, predict, scrape } from '../../helpers/observability.js';

const QUEUE_BYTES = 256 * 1024;
const ROUNDS = 2500;

const quantile = (xs: number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};

describe('a sink that never answers, without Redis', () => {
  let receiver: EventReceiver;
  let model: HttpBackend;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-log-'));

  beforeAll(async () => {
    receiver = await startEventReceiver('hang');
    model = await startHttpBackend({ name: 'm' });
    writeFileSync(join(dir, 'sinks.yaml'), `- name: hole\n  type: cloudevents\n  url: ${receiver.url}\n  queueBytes: ${QUEUE_BYTES}\n  timeout: 30s\n`);
    gw = await startTestGateway({
      manifests: {
        'logged.yaml': sdep('logged', 'ns', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-log': 'sinks: [hole]' }),
        'plain.yaml': sdep('plain', 'ns', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'logged-main.ns:8000': model.port, 'plain-main.ns:8000': model.port },
      args: ['--log-sinks', join(dir, 'sinks.yaml')],
    });
  });

  afterAll(async () => {
    await gw?.stop();
    await model?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('predictions take as long as without logging (no more of them 1 ms slower than a plain twin), the queue stays under its bound, the overflow is counted', async () => {
    const agent = new Agent({ connections: 1 });
    const body = `{"data":{"ndarray":[[${'1,'.repeat(200)}1]]}}`;
    const once = async (name: string): Promise<number> => {
      const t = performance.now();
      const r = await request(`${gw.url}/seldon/ns/${name}${predict}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, dispatcher: agent });
      await r.body.text();
      expect(r.statusCode).toBe(200);
      return performance.now() - t;
    };
    // Warm both paths first (connections, compiled code).
    for (let i = 0; i < 200; i++) await once(i % 2 ? 'logged' : 'plain');
    const logged: number[] = [];
    const plain: number[] = [];
    let peak = 0;
    for (let i = 0; i < ROUNDS; i++) {
      // Alternating, so both meet the same machine (a shared one: other work comes and goes).
      if (i % 2 === 0) {
        logged.push(await once('logged'));
        plain.push(await once('plain'));
      } else {
        plain.push(await once('plain'));
        logged.push(await once('logged'));
      }
      if (i % 500 === 499) peak = Math.max(peak, metricSum(await scrape(gw.adminUrl), 'seldon_gateway_log_buffer_bytes', { sink: 'hole' }));
    }
    await agent.close();
    const samples = await scrape(gw.adminUrl);
    peak = Math.max(peak, metricSum(samples, 'seldon_gateway_log_buffer_bytes', { sink: 'hole' }));
    let loggedSlower = 0;
    let plainSlower = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const d = logged[i]! - plain[i]!;
      if (d > 1) loggedSlower++;
      else if (d < -1) plainSlower++;
    }
    // Three standard deviations of a fair split, and a fifth of the pairs the machine's own noise split (see above).
    const split = loggedSlower + plainSlower;
    const bound = 3 * Math.sqrt(split) + 5 + split / 5;
    const report = `pairs with the logged one > 1 ms slower ${loggedSlower}, the plain one ${plainSlower} (bound on the excess ${bound.toFixed(1)}); p99 logged ${quantile(logged, 0.99).toFixed(3)} ms, plain ${quantile(plain, 0.99).toFixed(3)} ms; p50 ${quantile(logged, 0.5).toFixed(3)} / ${quantile(plain, 0.5).toFixed(3)} ms; queue peak ${peak} B`;
    console.log(`sink never answers: ${report}`);
    expect(loggedSlower - plainSlower, report).toBeLessThanOrEqual(bound);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(QUEUE_BYTES);
    const dropped = metricSum(samples, 'seldon_gateway_log_drops_total', { sink: 'hole', reason: 'overflow' });
    // Three events a request (request, response, decision), 2,700 requests: far more than fits.
    expect(dropped).toBeGreaterThan(0);
    expect(metricSum(samples, 'seldon_gateway_log_events_total', { sink: 'hole', result: 'dropped' })).toBe(dropped);
    expect(receiver.events).toHaveLength(0);
  }, 180_000);
});
