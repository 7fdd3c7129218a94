/**
 * The observability pieces on their own: answer comparison, the observed window over counter
 * samples, access log sampling, the predictor header, and the new options.
 */
import { describe, expect, it } from 'vitest';
import { AccessLog } from '../../../gateway/observe/access-log.js';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { GatewayMetrics } from '../../../gateway/observe/metrics.js';
import { TrafficHistory, sampleOf, type Gathered, type MetricsJson } from '../../../gateway/observe/observed.js';
import { AnswerFields } from '../../../gateway/edge/answer-fields.js';
import { ResponseParser, type ResponseHead } from '../../../gateway/upstream/http1-response.js';
import { ShadowComparer, answerDifference, jsonDifference, latestDisagreements, type Answer, type Disagreement } from '../../../gateway/observe/shadow-compare.js';
import type { Backend } from '../../../routing/types.js';
import { LogCapture } from '../../helpers/observability.js';

const json = (v: unknown, status = 200, contentType = 'application/json'): Answer => ({ status, contentType, contentEncoding: undefined, body: Buffer.from(JSON.stringify(v)) });
const settings = { tolerance: 1e-6, ignore: ['meta'] };

describe('answer comparison', () => {
  it('equal status and JSON after parsing agree; key order and whitespace do not matter', () => {
    const a: Answer = { status: 200, contentType: 'application/json', contentEncoding: undefined, body: Buffer.from('{"a":1,"b":[1,2]}') };
    const b: Answer = { status: 200, contentType: 'application/json; charset=utf-8', contentEncoding: undefined, body: Buffer.from('{ "b": [1, 2.0],\n "a": 1 }') };
    expect(answerDifference(a, b, settings)).toBeNull();
  });

  it('ignores `meta` (and other configured top-level fields) only at the top level', () => {
    expect(answerDifference(json({ data: 1, meta: { puid: 'x' } }), json({ data: 1, meta: { puid: 'y', tags: {} } }), settings)).toBeNull();
    expect(answerDifference(json({ data: 1 }), json({ data: 1, meta: {} }), settings)).toBeNull();
    expect(answerDifference(json({ data: { meta: 1 } }), json({ data: { meta: 2 } }), settings)).toBe('$.data.meta: 1 ≠ 2');
    expect(answerDifference(json({ id: 'a', outputs: [1] }), json({ id: 'b', outputs: [1] }), { tolerance: 0, ignore: ['id'] })).toBeNull();
    expect(answerDifference(json({ data: 1, meta: 1 }), json({ data: 1, meta: 2 }), { tolerance: 0, ignore: [] })).toBe('$.meta: 1 ≠ 2');
  });

  it('numbers agree within the tolerance, relative for large values and absolute below 1', () => {
    expect(jsonDifference(1, 1.0000005, 1e-6)).toBeNull();
    expect(jsonDifference(1, 1.00001, 1e-6)).toBe('$: 1 ≠ 1.00001');
    expect(jsonDifference(1e9, 1e9 + 100, 1e-6)).toBeNull();
    expect(jsonDifference(1e9, 1e9 + 10_000, 1e-6)).not.toBeNull();
    expect(jsonDifference(0, 5e-7, 1e-6)).toBeNull();
    expect(jsonDifference([[0.25, 0.75]], [[0.25, 0.7]], 0.1)).toBeNull();
    expect(jsonDifference([[0.25, 0.75]], [[0.25, 0.5]], 0.1)).toBe('$[0][1]: 0.75 ≠ 0.5');
  });

  it('names the first difference: status, type, length, missing field', () => {
    expect(answerDifference(json({ a: 1 }), json({ a: 1 }, 500), settings)).toBe('status 200 ≠ 500');
    expect(jsonDifference({ a: [1, 2] }, { a: [1] }, 0)).toBe('$.a: 2 items ≠ 1 items');
    expect(jsonDifference({ a: '1' }, { a: 1 }, 0)).toBe('$.a: string "1" ≠ number 1');
    expect(jsonDifference({ a: 1 }, { a: 1, b: 2 }, 0)).toBe('$.b: missing in the primary answer');
    expect(jsonDifference({ 'x-y': 1 }, {}, 0)).toBe('$["x-y"]: missing in the shadow answer');
    expect(jsonDifference({ a: null }, { a: {} }, 0)).toBe('$.a: null null ≠ object {}');
  });

  it('compares bodies byte for byte when not JSON, compressed or unparseable', () => {
    const text = (s: string, ct = 'text/plain', enc?: string): Answer => ({ status: 200, contentType: ct, contentEncoding: enc, body: Buffer.from(s) });
    expect(answerDifference(text('abc'), text('abc'), settings)).toBeNull();
    expect(answerDifference(text('abc'), text('abd'), settings)).toBe('bodies differ (3 bytes ≠ 3 bytes, same length)');
    expect(answerDifference(text('{"a":1}', 'application/json', 'gzip'), text('{"a": 1}', 'application/json', 'gzip'), settings)).toMatch(/^bodies differ/);
    expect(answerDifference(text('{"a":1', 'application/json'), text('{"a":1', 'application/json'), settings)).toBeNull();
    expect(answerDifference(text('{"a":1}', 'application/json'), text('{"a": 1}', 'text/plain'), settings)).toMatch(/^bodies differ/);
    expect(answerDifference(text('{"a":1}', 'application/vnd.seldon+json'), text('{"a": 1}', 'application/problem+json'), settings)).toBeNull();
  });

  it('ShadowComparer waits for the primary, counts, keeps the last disagreements with truncated bodies', async () => {
    const metrics = new GatewayMetrics({ processMetrics: false });
    const comparer = new ShadowComparer({ ...settings, maxBodyBytes: 4096 }, metrics, 3);
    const backend = (predictor: string): Backend => ({ id: `m/d/${predictor}`, origin: { namespace: 'm', deployment: 'd', predictor } }) as unknown as Backend;
    const main = backend('main');
    const shadow = backend('shadow');
    const head = (ct: string): string[] => ['Content-Type', ct];
    const run = async (primaryBody: string, shadowBody: string, primaryComplete = true): Promise<void> => {
      const cap = comparer.capture(main);
      const col = comparer.collector();
      col.head(200, head('application/json'));
      col.data(Buffer.from(shadowBody));
      comparer.shadowAnswered(cap, shadow, 'rest', col); // before the primary has answered
      cap.head(200, head('application/json'));
      cap.data(Buffer.from(primaryBody));
      cap.end(primaryComplete);
      await new Promise((r) => setImmediate(r));
      await new Promise((r) => setImmediate(r));
    };
    await run('{"x":1}', '{"x":1}');
    for (let i = 0; i < 5; i++) await run('{"x":1}', `{"x":${i + 2}}`);
    await run('{"x":1}', `{"x":1,"pad":"${'p'.repeat(3000)}"}`);
    await run('{"x":1}', '{"x":9}', false); // the primary never answered in full: skipped
    await run('{"x":1}', `{"x":1,"pad":"${'p'.repeat(5000)}"}`); // over 4096: skipped
    const counts = Object.fromEntries((await metrics.comparisons.get()).values.map((v) => [v.labels.result, v.value]));
    expect(counts).toEqual({ agree: 1, disagree: 6, skipped: 2 });
    const kept = comparer.recent();
    expect(kept).toHaveLength(3);
    expect(kept.map((k) => k.why)).toEqual(['$.x: 1 ≠ 5', '$.x: 1 ≠ 6', '$.pad: missing in the primary answer']);
    expect(kept[2]!.shadow.body).toMatch(/^\{"x":1,"pad":"p+… \(3016 bytes\)$/);
    expect(Buffer.byteLength(kept[2]!.shadow.body)).toBeLessThan(2100);
  });

  it('merges disagreements from several processes: the newest, oldest first', () => {
    const d = (at: string): Disagreement => ({ at, why: at }) as unknown as Disagreement;
    expect(
      latestDisagreements(
        [
          [d('2024-01-01T00:00:01Z'), d('2024-01-01T00:00:04Z')],
          [d('2024-01-01T00:00:02Z'), d('2024-01-01T00:00:03Z')],
        ],
        3,
      ).map((x) => x.at),
    ).toEqual(['2024-01-01T00:00:02Z', '2024-01-01T00:00:03Z', '2024-01-01T00:00:04Z']);
  });
});

describe('observed window', () => {
  const requests = (values: [string, string, number][]): MetricsJson =>
    [
      {
        name: 'seldon_gateway_requests_total',
        help: '',
        type: 'counter',
        aggregator: 'sum',
        values: values.map(([predictor, code, value]) => ({ value, labels: { namespace: 'm', deployment: 'd', predictor, protocol: 'rest', kind: 'primary', code } })),
      },
    ] as unknown as MetricsJson;

  it('sums processes and differences a fresh sample against the oldest kept one', async () => {
    let now = 1_000_000;
    let current: MetricsJson[] = [requests([['main', '200', 0]])];
    const history = new TrafficHistory(
      async (): Promise<Gathered> => ({ metrics: current, disagreements: [] }),
      10_000,
      60_000,
      () => now,
    );
    await history.start();
    history.stop();
    // Two processes (workers) each served some.
    current = [
      requests([
        ['main', '200', 30],
        ['canary', '200', 10],
      ]),
      requests([
        ['main', '200', 45],
        ['main', '503', 5],
        ['canary', '200', 10],
      ]),
    ];
    now += 20_000;
    const w = (await history.observe()).window;
    expect(w.seconds).toBe(20);
    expect(w.requests('m', 'd', 'main', 'rest')).toEqual({ total: 80, codes: { '200': 75, '503': 5 } });
    expect(w.requests('m', 'd', 'canary', 'rest')).toEqual({ total: 20, codes: { '200': 20 } });
    expect(w.requests('m', 'd', 'nope', 'rest')).toEqual({ total: 0, codes: {} });
    expect(w.requests('m', 'd', 'main', 'grpc').total).toBe(0);
  });

  it('forgets samples older than the window; a counter that went down (worker restart) counts from zero', async () => {
    let now = 0;
    let main = 0;
    const history = new TrafficHistory(
      async () => ({ metrics: [requests([['main', '200', main]])], disagreements: [] }),
      10_000,
      60_000,
      () => now,
    );
    // Samples every 10 s, by hand: 100 requests per 10 s.
    for (let t = 0; t <= 120_000; t += 10_000) {
      now = t;
      main = t / 100;
      await (history as unknown as { sample(): Promise<void> }).sample();
    }
    now = 125_000;
    main = 1250;
    let w = (await history.observe()).window;
    expect(w.seconds).toBe(55); // from the oldest sample within 60 s: the one at 70 s
    expect(w.requests('m', 'd', 'main', 'rest').total).toBe(550);
    main = 40; // restarted
    w = (await history.observe()).window;
    expect(w.requests('m', 'd', 'main', 'rest').total).toBe(40);
  });

  it('reads only the gateway counters it needs', async () => {
    const metrics = new GatewayMetrics({ processMetrics: false });
    const backend = { origin: { namespace: 'n', deployment: 'd', predictor: 'p' } } as unknown as Backend;
    metrics.request(backend, 'rest', 'primary', 200, 0.01);
    metrics.request(backend, 'grpc', 'primary', 0, 0.01);
    metrics.shadow(backend, 'rest', 'dropped_in_flight');
    metrics.comparison(backend, 'rest', 'agree');
    const s = sampleOf([await metrics.registry.getMetricsAsJSON()], 0);
    expect([...s.counts.values()]).toEqual([1, 1, 1, 1]);
  });
});

describe('access log and predictor header', () => {
  it('samples with the configured rate and writes the entry as one JSON line', () => {
    const out = new LogCapture();
    const draws = [0.1, 0.6, 0.49, 0.5];
    const log = new AccessLog(out, { sample: 0.5, format: 'json', query: false }, () => draws.shift()!);
    expect([log.sampled(), log.sampled(), log.sampled(), log.sampled()]).toEqual([true, false, true, false]);
    expect(new AccessLog(out, { sample: 1, format: 'json', query: false }, () => 0.999999).sampled()).toBe(true);
    log.write({
      startTime: Date.parse('2025-01-31T12:00:00.000Z'),
      clientAddress: '127.0.0.1:5000',
      forwardedFor: undefined,
      method: 'GET',
      authority: 'h',
      path: log.path('/x?access_token=secret'),
      protocol: 'HTTP/1.1',
      responseCode: 200,
      grpcStatus: undefined,
      bytesReceived: 0,
      bytesSent: 2,
      durationMs: 1.5,
      upstreamMs: 1,
      upstreamHost: '127.0.0.1:9',
      upstreamCluster: 'u.n:1',
      namespace: 'n',
      deployment: 'd',
      predictor: 'p',
      retries: 0,
      hedges: 0,
      shadows: 0,
      requestId: 'r1',
      traceId: undefined,
      userAgent: 'ua',
      peerSubject: undefined,
      fallback: undefined,
    });
    expect(out.lines()[0]).toMatchObject({ msg: 'access', level: 'info', request_id: 'r1', response_code: 200, path: '/x', start_time: '2025-01-31T12:00:00.000Z', trace_id: null });
  });

  it('x-seldon-predictor replaces any copy the upstream sent, whatever its case', () => {
    const h = AnswerFields.ofList(['Content-Type', 'application/json', 'X-Seldon-Predictor', 'forged', 'x-seldon-predictor', 'again', 'x-other', '1']);
    h.setPredictor('main');
    expect(h.list()).toEqual(['Content-Type', 'application/json', 'x-other', '1', 'x-seldon-predictor', 'main']);
    // From the model's bytes (the lane's form): the same fields reach the client.
    const wire = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Seldon-Predictor: forged\r\nx-seldon-predictor: again\r\nx-other: 1\r\nContent-Length: 0\r\n\r\n';
    let head: ResponseHead | undefined;
    const parser = new ResponseParser({ onHead: (x) => (head = x), onBody: () => undefined, onEnd: () => undefined }, 16 * 1024);
    parser.expect(false);
    parser.execute(Buffer.from(wire, 'latin1'));
    const fast = AnswerFields.ofHead(head!);
    fast.setPredictor('main');
    const out = Buffer.alloc(fast.fieldBytes);
    expect(fast.writeFields(out, 0)).toBe(out.length);
    expect(`${out.toString('latin1')}${fast.added.map((v, i, a) => (i % 2 === 0 ? `${v}: ${a[i + 1]}\r\n` : '')).join('')}`).toBe(
      'Content-Type: application/json\r\nx-other: 1\r\nContent-Length: 0\r\nx-seldon-predictor: main\r\n',
    );
    expect(fast.list()).toEqual(['Content-Type', 'application/json', 'x-other', '1', 'Content-Length', '0', 'x-seldon-predictor', 'main']);
  });
});

describe('options', () => {
  it('flags, environment and defaults', () => {
    const dflt = parseConfig('serve', [], {});
    expect(dflt.observe.predictorHeader).toBe(false);
    expect(dflt.observe.accessLog).toEqual({ enabled: true, format: 'json', sample: 1, query: false, bufferBytes: 16 * 1024 * 1024 });
    expect(dflt.observe.tracing).toEqual({ endpoint: undefined, sample: 1 });
    expect(dflt.observe.shadowCompare).toEqual({ enabled: false, tolerance: 1e-6, ignore: ['meta'], maxBodyBytes: 256 * 1024 });
    const flags = parseConfig(
      'serve',
      [
        '--predictor-header',
        '--access-log-sample',
        '0.25',
        '--shadow-compare',
        '--shadow-compare-tolerance',
        '0.01',
        '--shadow-compare-ignore',
        'meta',
        '--shadow-compare-ignore',
        'id',
        '--shadow-compare-max-body',
        '1MiB',
      ],
      {},
    );
    expect(flags.observe.predictorHeader).toBe(true);
    expect(flags.observe.accessLog.sample).toBe(0.25);
    expect(flags.observe.shadowCompare).toEqual({ enabled: true, tolerance: 0.01, ignore: ['meta', 'id'], maxBodyBytes: 1024 * 1024 });
    const env = parseConfig('serve', [], {
      SELDON_GATEWAY_PREDICTOR_HEADER: 'true',
      SELDON_GATEWAY_ACCESS_LOG_SAMPLE: '0.5',
      SELDON_GATEWAY_SHADOW_COMPARE: 'yes',
      SELDON_GATEWAY_SHADOW_COMPARE_IGNORE: 'meta, model_version',
      SELDON_GATEWAY_SHADOW_COMPARE_TOLERANCE: '1e-3',
    });
    expect(env.observe.predictorHeader).toBe(true);
    expect(env.observe.accessLog.sample).toBe(0.5);
    expect(env.observe.shadowCompare).toMatchObject({ enabled: true, tolerance: 0.001, ignore: ['meta', 'model_version'] });
    expect(parseConfig('serve', ['--shadow-compare-ignore', ''], {}).observe.shadowCompare.ignore).toEqual([]);
  });

  it('rejects a sample outside 0..1, a negative tolerance, a non-number', () => {
    expect(() => parseConfig('serve', ['--access-log-sample', '1.5'], {})).toThrow(UsageError);
    expect(() => parseConfig('serve', ['--access-log-sample', 'half'], {})).toThrow(/not a number/);
    expect(() => parseConfig('serve', ['--shadow-compare-tolerance', '-1'], {})).toThrow(UsageError);
  });
});
