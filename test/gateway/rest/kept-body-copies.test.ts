/**
 * A route that keeps a request body keeps one copy at most, shared by everything that reads it; a plain
 * route keeps none. Allocation counted: every Buffer of at least half the body's size that the gateway's
 * own code allocates or joins while the request is served (Buffer.concat, alloc, allocUnsafe,
 * allocUnsafeSlow, from), told apart from the test's model and client by the caller's file. The spies
 * only count: each calls the real function.
 *
 * - a plain route streams the body: no copy;
 * - retries (seldon.io/ambassador-retries, within --retry-buffer): one, sent again whole on a retry;
 * - a shadow: one, for the mirror, while the primary streams;
 * - payload logging: one, the event's;
 * - retries, a shadow and payload logging on one route: still one, the retry buffer, which the mirror
 *   and the log read too (the log joined its one piece again before: two);
 * - a gzip'd body decoded for its model (`decodeRequests`) with a shadow and payload logging: at most one, the
 *   decoded body, which the model, the mirror and the log share (zlib's own output buffer is made inside
 *   node:zlib, off the gateway's stack: it may not be counted, so the bound is "at most").
 *
 * The body arrives in several reads, so each kept body is exactly one join: the count is exact, not a bound.
 *
 * Each model and the mirror get the body byte for byte (sha256 of what they received).
 */
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, sep } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';

const LOG = 'seldon.io/gateway-log';
/** Over the lane's whole-body size (64 KiB), so it streams through the lane in several reads; under --retry-buffer (1 MiB). */
const BODY = Buffer.from(`{"data":{"ndarray":[${'0.123456,'.repeat(29_000)}0]}}`);
const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const GATEWAY_SOURCES = `${process.cwd()}${sep}gateway${sep}`;

/** Body-sized buffers made by the gateway's own code while counting. */
const made: { how: string; bytes: number }[] = [];
let counting = false;

function countFrom(how: 'concat' | 'alloc' | 'allocUnsafe' | 'allocUnsafeSlow' | 'from'): void {
  const real = Buffer[how] as (...args: unknown[]) => Buffer;
  vi.spyOn(Buffer, how).mockImplementation(function (this: unknown, ...args: unknown[]): Buffer {
    const out = real.apply(Buffer, args);
    if (counting && out.length >= BODY.length / 2) {
      const stack = new Error().stack ?? '';
      if (stack.includes(GATEWAY_SOURCES)) made.push({ how, bytes: out.length });
    }
    return out;
  } as never);
}

describe('a kept request body: one copy at most, shared by its readers', () => {
  let model: HttpBackend;
  let failing: HttpBackend;
  let mirror: HttpBackend;
  let receiver: EventReceiver;
  let gw: TestGateway;
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kept-'));
  let failNext = 0;

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'model' });
    // Fails the first request it gets after `failNext` is set (a 503, which ambassador-retries retries), then answers.
    failing = await startHttpBackend({
      name: 'flaky',
      handler: (_req, res) => {
        if (failNext > 0) {
          failNext--;
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end('{"status":"FAILURE"}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"data":{"ndarray":[1]}}');
      },
    });
    mirror = await startHttpBackend({ name: 'mirror' });
    receiver = await startEventReceiver();
    writeFileSync(join(dir, 'sinks.yaml'), `- name: seldon\n  type: cloudevents\n  url: ${receiver.url}\n  retryMin: 20ms\n`);
    const retries = { 'seldon.io/ambassador-retries': '2' };
    gw = await startTestGateway({
      manifests: {
        'plain.yaml': sdep('plain', 'ml', { predictors: [{ name: 'main' }] }),
        'retried.yaml': sdep('retried', 'ml', { predictors: [{ name: 'main' }] }, retries),
        'shadowed.yaml': sdep('shadowed', 'ml', { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }),
        'logged.yaml': sdep('logged', 'ml', { predictors: [{ name: 'main' }] }, { [LOG]: 'sinks: [seldon]\nmaxBodyBytes: 1048576' }),
        'decoded.yaml': sdep(
          'decoded',
          'ml',
          { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] },
          { 'seldon.io/gateway-compression': '{decodeRequests: true}', [LOG]: 'sinks: [seldon]\nmaxBodyBytes: 1048576' },
        ),
        'all.yaml': sdep('all', 'ml', { predictors: [{ name: 'main' }, { name: 'copy', shadow: true }] }, { ...retries, [LOG]: 'sinks: [seldon]\nmaxBodyBytes: 1048576' }),
      },
      resolve: {
        'plain-main.ml:8000': model.port,
        'retried-main.ml:8000': failing.port,
        'shadowed-main.ml:8000': model.port,
        'shadowed-copy.ml:8000': mirror.port,
        'logged-main.ml:8000': model.port,
        'decoded-main.ml:8000': model.port,
        'decoded-copy.ml:8000': mirror.port,
        'all-main.ml:8000': failing.port,
        'all-copy.ml:8000': mirror.port,
      },
      args: ['--log-sinks', join(dir, 'sinks.yaml')],
    });
    for (const how of ['concat', 'alloc', 'allocUnsafe', 'allocUnsafeSlow', 'from'] as const) countFrom(how);
  });

  afterEach(() => {
    counting = false;
    made.length = 0;
  });

  afterAll(async () => {
    vi.restoreAllMocks();
    await gw?.stop();
    await Promise.all([model?.close(), failing?.close(), mirror?.close(), receiver?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** POST the body to `deployment` while counting; the status, once every reader that should have it has it. */
  async function send(deployment: string, settled: () => boolean, encoding?: 'gzip'): Promise<number> {
    counting = true;
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(encoding ? { 'content-encoding': encoding } : {}) };
    const res = await fetch(`${gw.url}/seldon/ml/${deployment}/api/v1.0/predictions`, { method: 'POST', headers, body: encoding ? gzipSync(BODY) : BODY });
    await res.arrayBuffer();
    await waitFor(settled, 10_000);
    counting = false;
    return res.status;
  }

  const received = (b: HttpBackend, from: number): string[] => b.requests.slice(from).map((r) => sha(r.body));
  const logged = (from: number): number => receiver.unique().length - from;

  it('a plain route streams the body: no copy', async () => {
    const before = model.requests.length;
    expect(await send('plain', () => model.requests.length > before)).toBe(200);
    expect(received(model, before)).toEqual([sha(BODY)]);
    expect(made).toEqual([]);
  });

  it('retries: one copy, sent again whole', async () => {
    const before = failing.requests.length;
    failNext = 1;
    expect(await send('retried', () => failing.requests.length >= before + 2)).toBe(200);
    expect(received(failing, before)).toEqual([sha(BODY), sha(BODY)]);
    // The body came in several reads: joined once.
    expect(made).toHaveLength(1);
  });

  it('a shadow: one copy, for the mirror', async () => {
    const [m, c] = [model.requests.length, mirror.requests.length];
    expect(await send('shadowed', () => model.requests.length > m && mirror.requests.length > c)).toBe(200);
    expect(received(model, m)).toEqual([sha(BODY)]);
    expect(received(mirror, c)).toEqual([sha(BODY)]);
    // The body came in several reads: joined once.
    expect(made).toHaveLength(1);
  });

  it('payload logging: one copy, the event', async () => {
    const [m, e] = [model.requests.length, receiver.unique().length];
    expect(await send('logged', () => model.requests.length > m && logged(e) >= 3)).toBe(200);
    const request = receiver
      .unique()
      .slice(e)
      .find((x) => x.event.type === 'io.seldon.serving.inference.request');
    expect(sha(Buffer.from(request!.body))).toBe(sha(BODY));
    // The body came in several reads: joined once.
    expect(made).toHaveLength(1);
  });

  it('retries, a shadow and payload logging on one route: one copy, read by all three', async () => {
    const [f, c, e] = [failing.requests.length, mirror.requests.length, receiver.unique().length];
    failNext = 1;
    expect(await send('all', () => failing.requests.length >= f + 2 && mirror.requests.length > c && logged(e) >= 3)).toBe(200);
    expect(received(failing, f)).toEqual([sha(BODY), sha(BODY)]);
    expect(received(mirror, c)).toEqual([sha(BODY)]);
    // The body came in several reads: joined once.
    expect(made).toHaveLength(1);
  });

  it('a gzip body decoded for its model, with a shadow and payload logging: at most one copy, the decoded body, read by all three', async () => {
    const [m, c, e] = [model.requests.length, mirror.requests.length, receiver.unique().length];
    expect(await send('decoded', () => model.requests.length > m && mirror.requests.length > c && logged(e) >= 3, 'gzip')).toBe(200);
    expect(received(model, m)).toEqual([sha(BODY)]);
    expect(received(mirror, c)).toEqual([sha(BODY)]);
    const request = receiver
      .unique()
      .slice(e)
      .find((x) => x.event.type === 'io.seldon.serving.inference.request');
    expect(sha(Buffer.from(request!.body))).toBe(sha(BODY));
    expect(made.length).toBeLessThanOrEqual(1);
  });
});
