/**
 * A sink that never answers, without Redis (docs/payload-logging.md#delivery): logging never holds
 * a prediction. Through one real gateway, predictions to a logged deployment and to one without
 * logging, interleaved on one connection in the same run:
 *
 * - their p99 latencies are within 1 ms of each other: compared block by block (ten blocks of 250
 *   pairs, the median of the blocks' differences), since a shared machine's stalls, tens of ms,
 *   land now on one side, now on the other;
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

  it('predictions take as long as without logging (p99 within 1 ms), the queue stays under its bound, the overflow is counted', async () => {
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
    const BLOCK = ROUNDS / 10;
    const differences: number[] = [];
    for (let b = 0; b < ROUNDS; b += BLOCK) differences.push(quantile(logged.slice(b, b + BLOCK), 0.99) - quantile(plain.slice(b, b + BLOCK), 0.99));
    const difference = quantile(differences, 0.5);
    const report = `p99 logged ${quantile(logged, 0.99).toFixed(3)} ms, plain ${quantile(plain, 0.99).toFixed(3)} ms; per block of ${BLOCK}, median difference ${difference.toFixed(3)} ms; p50 ${quantile(logged, 0.5).toFixed(3)} / ${quantile(plain, 0.5).toFixed(3)} ms; queue peak ${peak} B`;
    console.log(`sink never answers: ${report}`);
    expect(Math.abs(difference), report).toBeLessThanOrEqual(1);
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(QUEUE_BYTES);
    const dropped = metricSum(samples, 'seldon_gateway_log_drops_total', { sink: 'hole', reason: 'overflow' });
    // Three events a request (request, response, decision), 2,700 requests: far more than fits.
    expect(dropped).toBeGreaterThan(0);
    expect(metricSum(samples, 'seldon_gateway_log_events_total', { sink: 'hole', result: 'dropped' })).toBe(dropped);
    expect(receiver.events).toHaveLength(0);
  }, 180_000);
});
