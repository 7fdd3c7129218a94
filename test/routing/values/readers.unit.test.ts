/**
 * One reader per kind of value: the same text, written in a Mapping, in the ambassador Module or in an
 * annotation, is accepted or refused alike and has one value. Each table row is one text; each place
 * reads it with its own key and says what it made of it.
 */
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { inspectModule, moduleCors } from '../../../routing/emissary/module.js';
import { breakerAnnotations, corsAnnotation, Findings, timeoutAnnotation } from '../../../routing/seldon/annotations.js';
import { parseCustomConfig, parseRetry } from '../../../routing/emissary/custom-config.js';
import { parseDuration } from '../../../routing/values/duration.js';
import { parseFlowFields } from '../../../routing/flow/config.js';
import { parseOutlierFields } from '../../../routing/health/outlier-config.js';
import { DEFAULT_BREAKER, type BreakerLimits } from '../../../routing/types.js';
import { parseBytes as flagBytes, parseDuration as flagDuration, parseWhole as flagWhole, UsageError } from '../../../gateway/config/values.js';
import { trafficOf } from '../../../routing/seldon/predictor-traffic.js';
import { predictorService } from '../../../routing/seldon/services.js';
import { parseCorsPolicy } from '../../../routing/policies/cors.js';
import { createReader } from '../../../gateway/config/read.js';
import { OPTIONS } from '../../../gateway/config/options.js';
import { buildRouteDefaults } from '../../../gateway/config/route-defaults.js';
import { buildExtAuth } from '../../../gateway/config/ext-auth.js';
import { parseFallbackTarget } from '../../../gateway/config/fallback-targets.js';
import type { CompileOptions } from '../../../routing/types.js';
import { parseLogFields } from '../../../routing/policies/log.js';
import { parseBanditAnnotation } from '../../../routing/steering/bandit.js';
import { parseHedgeFields } from '../../../routing/hedge/config.js';
import { parseRolloutAnnotation } from '../../../routing/steering/rollout/config.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import type { PredictorSpec } from '../../../routing/seldon/deployment.js';
import { parseLogSinks } from '../../../gateway/config/log-sinks.js';

/** What a place made of a value: its number (or object), or refused. */
type Got = { ok: true; value: unknown } | { ok: false };
const REFUSED: Got = { ok: false };
const value = (v: unknown): Got => ({ ok: true, value: v });

const module = (config: string): ReturnType<typeof inspectModule> => inspectModule(`apiVersion: getambassador.io/v3alpha1\nkind: Module\nname: ambassador\nconfig:\n${config.replace(/^/gm, '  ')}\n`);

/** One Mapping with `extra` (YAML lines): the route, or refused (dropped). */
function mapping(extra: string): Got {
  const cfg = parseCustomConfig(`apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /seldon/ns/m/\nservice: m-svc\n${extra}`, 'ns');
  return cfg.ok ? value(cfg.mappings[0]) : REFUSED;
}

/** An annotation map of one key. */
const ann = (key: string, v: string): Map<string, string> => new Map([[key, v]]);

/** The texts of a YAML scalar: what a Mapping or Module holds, and what an annotation (always a string) holds. */
const asAnnotation = (yamlText: string): string => String(parseYaml(yamlText) as unknown);

describe('whole numbers: one reader (routing/values/whole-number.ts)', () => {
  // Texts as written in YAML; an annotation holds the same text as a string.
  const rows: [string, Got][] = [
    ['3000', value(3000)],
    ['"3000"', value(3000)],
    ['" 3000 "', value(3000)],
    ['0', value(0)],
    ['2147483647', value(2147483647)],
    ['2147483648', REFUSED],
    ['-1', REFUSED],
    ['2.5', REFUSED],
    ['"1e3"', REFUSED],
    ['"3s"', REFUSED],
    ['"abc"', REFUSED],
    ['""', REFUSED],
    ['true', REFUSED],
  ];

  it.each(rows)('%s: the same in a Mapping (timeout_ms), the Module (xff_num_trusted_hops) and an annotation (seldon.io/rest-timeout)', (text, want) => {
    const m = mapping(`timeout_ms: ${text}`);
    const inMapping: Got = m.ok ? value((m.value as { timeoutMs: number }).timeoutMs) : REFUSED;
    const key = module(`xff_num_trusted_hops: ${text}`).keys[0]!;
    const mod = module(`xff_num_trusted_hops: ${text}`).module;
    const inModule: Got = key.class === 'honoured' ? value(mod.xffNumTrustedHops) : REFUSED;
    const f = new Findings();
    const t = timeoutAnnotation(ann('seldon.io/rest-timeout', asAnnotation(text)), 'rest', { defaultTimeoutMs: 1234, defaultIdleTimeoutMs: 300_000 }, f);
    // A refused annotation keeps the default with a warning (a tuning value degrades its deployment).
    const inAnnotation: Got = f.warnings.length > 0 ? REFUSED : value(t.timeoutMs);
    expect({ mapping: inMapping, module: inModule, annotation: inAnnotation }).toEqual({ mapping: want, module: want, annotation: want });
    if (!want.ok) expect(t.timeoutMs).toBe(1234);
  });

  it('retry_policy.num_retries reads the same texts (Mapping and Module)', () => {
    for (const [text, want] of rows) {
      const r = parseRetry(parseYaml(`{retry_on: 5xx, num_retries: ${text}}`));
      expect([text, typeof r === 'string' ? REFUSED : value(r.numRetries)]).toEqual([text, want]);
      const k = module(`retry_policy:\n  retry_on: 5xx\n  num_retries: ${text}`).keys[0]!;
      expect([text, k.class === 'honoured']).toEqual([text, want.ok]);
    }
  });

  it("a Mapping's precedence and weight read the same texts, a minus too (what below 0 means is theirs)", () => {
    const signed: [string, Got][] = [
      ...rows.map(([t, w]): [string, Got] => (t === '-1' ? [t, value(-1)] : [t, w])),
      ['" -7 "', value(-7)],
      ['-2147483647', value(-2147483647)],
      ['-2147483648', REFUSED],
      ['"+1"', REFUSED],
    ];
    for (const [text, want] of signed) {
      const p = mapping(`precedence: ${text}`);
      expect([text, p.ok ? value((p.value as { rank: number }).rank) : REFUSED]).toEqual([text, want]);
      const w = mapping(`weight: ${text}`);
      expect([text, w.ok ? value((w.value as { weight: number }).weight) : REFUSED]).toEqual([text, want]);
    }
  });
});

describe("whole numbers: a flag, an operator file and a predictor's traffic read them as a Mapping does", () => {
  const flag = (text: string): Got => {
    try {
      return value(flagWhole('max-connections', text));
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return REFUSED;
    }
  };
  const sink = (yamlText: string): Got => {
    try {
      return value(parseLogSinks(`- name: a\n  type: file\n  path: /tmp/a\n  maxLen: ${yamlText}\n`)[0]!.maxLen);
    } catch {
      return REFUSED;
    }
  };
  /** A predictor's `traffic` (0..100 by its own rule): its weight, or refused (taken as 0 with a warning). */
  const traffic = (yamlText: string): Got => {
    const f = new Findings();
    const w = trafficOf({ name: 'p', traffic: parseYaml(yamlText) as unknown } as PredictorSpec, f);
    return f.warnings.length > 0 ? (expect(w).toBe(0), REFUSED) : value(w);
  };
  it.each([
    ['40', value(40)],
    ['"40"', value(40)],
    ['" 40 "', value(40)],
    ['0', value(0)],
    ['2.5', REFUSED],
    ['"1e1"', REFUSED],
    ['"0x0a"', REFUSED],
    ['"+4"', REFUSED],
    ['true', REFUSED],
    ['""', REFUSED],
  ] as [string, Got][])('%s: the same in a Mapping, a flag, --log-sinks and traffic', (text, want) => {
    const m = mapping(`timeout_ms: ${text}`);
    expect({
      mapping: m.ok ? value((m.value as { timeoutMs: number }).timeoutMs) : REFUSED,
      flag: flag(asAnnotation(text)),
      // maxLen is 1 or more by its own rule.
      logSinks: sink(text),
      traffic: traffic(text),
    }).toEqual({ mapping: want, flag: want, logSinks: want.ok && want.value === 0 ? REFUSED : want, traffic: want });
  });

  it('past int32 a flag is refused as a Mapping key is; a fractional traffic is no weight', () => {
    expect(() => flagWhole('max-connections', '2147483648')).toThrow('--max-connections: "2147483648" is larger than 2147483647');
    expect(mapping('timeout_ms: 2147483648').ok).toBe(false);
    const f = new Findings();
    expect(trafficOf({ name: 'p', traffic: 50.5 } as unknown as PredictorSpec, f)).toBe(0);
    expect(f.warnings).toEqual(['predictor "p": traffic 50.5 is not a whole number: taken as 0']);
  });
});

describe('whole numbers in the gateway-* documents and in status codes', () => {
  it("seldon.io/gateway-flow queue, seldon.io/gateway-outlier maxEjectedPercent: the same texts accepted and refused as a Mapping's timeout_ms", () => {
    for (const [text, wantOk] of [
      ['10', true],
      ['"10"', true],
      ['" 10 "', true],
      ['-1', false],
      ['2.5', false],
      ['"1e1"', false],
      ['"0x0a"', false],
      ['true', false],
    ] as const) {
      const flow = parseFlowFields(`queue: ${text}`);
      const outlier = parseOutlierFields(`maxEjectedPercent: ${text}`);
      const m = mapping(`timeout_ms: ${text}`);
      expect([text, flow.ok, outlier.ok, m.ok]).toEqual([text, wantOk, wantOk, wantOk]);
    }
  });

  it('redirect_response_code and on_status_code: a hexadecimal or exponent text is no status (Number() read "0x12d" as 301)', () => {
    const redirect = (code: string): boolean => mapping(`host_redirect: true\nredirect_response_code: ${code}`).ok;
    expect(['301', '"301"', '"0x12d"', '"3.01e2"', '301.0'].map(redirect)).toEqual([true, true, false, false, true]);
    const override = (code: string): boolean => mapping(`error_response_overrides:\n  - on_status_code: ${code}\n    body: {text_format: x}`).ok;
    expect(['404', '"404"', '"0x194"', '" "', '4.04e2'].map(override)).toEqual([true, true, false, false, true]);
  });
});

describe('circuit breakers: one reader (routing/seldon/circuit-breakers.ts)', () => {
  const limits = (b: Partial<BreakerLimits>): BreakerLimits => ({ ...DEFAULT_BREAKER, ...b });
  const FIELD: Record<string, keyof BreakerLimits> = { max_connections: 'maxConnections', max_pending_requests: 'maxPendingRequests', max_requests: 'maxRequests', max_retries: 'maxRetries' };
  // [field, YAML text, what the Mapping and the Module make of it, what the annotation makes of it]
  const rows: [string, string, Got, Got][] = [
    ['max_retries', '5', value(limits({ maxRetries: 5 })), value(limits({ maxRetries: 5 }))],
    ['max_retries', '"5"', value(limits({ maxRetries: 5 })), value(limits({ maxRetries: 5 }))],
    // Envoy's 0: no retry allowed. Seldon's annotation 0 is "not set" (its operator wrote no field): Envoy's default.
    ['max_retries', '0', value(limits({ maxRetries: 0 })), value(DEFAULT_BREAKER)],
    ['max_requests', '0', value(limits({ maxRequests: 0 })), value(DEFAULT_BREAKER)],
    ['max_pending_requests', '7', value(limits({ maxPendingRequests: 7 })), value(limits({ maxPendingRequests: 7 }))],
    ['max_connections', '2', value(limits({ maxConnections: 2 })), value(limits({ maxConnections: 2 }))],
    ['max_connections', '0', REFUSED, value(DEFAULT_BREAKER)],
    ['max_retries', '-1', REFUSED, REFUSED],
    ['max_retries', '2.5', REFUSED, REFUSED],
    ['max_requests', '"ten"', REFUSED, REFUSED],
    ['max_requests', '2147483648', REFUSED, REFUSED],
  ];

  it.each(rows)('%s: %s: the same limits from a Mapping and the Module; the annotation refuses what they refuse', (field, text, want, wantAnnotation) => {
    const m = mapping(`circuit_breakers:\n  - ${field}: ${text}`);
    const inMapping: Got = m.ok ? value((m.value as { breaker: BreakerLimits }).breaker) : REFUSED;
    const r = module(`circuit_breakers:\n  - ${field}: ${text}`);
    const inModule: Got = r.keys[0]!.class === 'honoured' ? value(r.module.circuitBreakers) : REFUSED;
    expect({ mapping: inMapping, module: inModule }).toEqual({ mapping: want, module: want });
    const f = new Findings();
    const b = breakerAnnotations(ann(`seldon.io/ambassador-circuit-breakers-${field.replaceAll('_', '-')}`, asAnnotation(text)), f);
    expect(f.warnings.length > 0 ? REFUSED : value(b)).toEqual(wantAnnotation);
    expect(FIELD[field]).toBeDefined();
  });

  it('the structure: a map instead of a list, an unknown threshold, a bad priority, two default entries are refused by the Mapping and the Module alike', () => {
    for (const text of ['{max_retries: 1}', '\n  - max_streams: 1', '\n  - priority: urgent', '\n  - max_retries: 1\n  - max_requests: 2']) {
      expect([text, mapping(`circuit_breakers: ${text}`).ok, module(`circuit_breakers: ${text}`).keys[0]!.class]).toEqual([text, false, 'refused']);
    }
    // A high entry is checked and never applies; priority in any case.
    const high = '\n  - priority: HIGH\n    max_retries: 9\n  - priority: Default\n    max_retries: 1';
    const m = mapping(`circuit_breakers: ${high}`);
    expect(m.ok && (m.value as { breaker: BreakerLimits }).breaker).toEqual(limits({ maxRetries: 1 }));
    expect(module(`circuit_breakers: ${high}`).module.circuitBreakers).toEqual(limits({ maxRetries: 1 }));
  });
});

describe('CORS: one reader (routing/policies/cors.ts)', () => {
  /** The policy each place makes of one `cors` block (YAML flow text), minus its function, or refused. */
  function places(text: string): { mapping: unknown; module: unknown; annotation: unknown } {
    const strip = (p: { allowsOrigin: unknown } | null | undefined): unknown => {
      if (p === null || p === undefined) return REFUSED;
      const { allowsOrigin: _, ...rest } = p;
      return rest;
    };
    const m = mapping(`cors: ${text}`);
    const r = module(`cors: ${text}`);
    const f = new Findings();
    const a = corsAnnotation(ann('seldon.io/gateway-cors', text), f);
    return {
      mapping: m.ok ? strip((m.value as { cors: { allowsOrigin: unknown } }).cors) : REFUSED,
      module: r.keys[0]!.class === 'honoured' ? strip(corsOf(r)) : REFUSED,
      annotation: a.ok ? strip(a.value) : REFUSED,
    };
  }
  // What routes take from the Module (moduleCors), not the block re-read by the Mapping's reader.
  const corsOf = (r: ReturnType<typeof inspectModule>): { allowsOrigin: unknown } | null => moduleCors(r.module) ?? null;

  it.each([
    ['{origins: "*"}', true],
    ['{origins: "https://a.example, https://b.example", methods: [GET, POST], max_age: "600"}', true],
    ['{origins: "*", colour: red}', true],
    ['{origins: "*", max_age: 1d}', false],
    ['{origins: "*", max_age: -1}', false],
    ['{origins: "https://a.example/"}', false],
    ['{methods: [GET]}', false],
    ['{origins: "*", headers: ["bad header"]}', false],
  ])('%s: one policy in a Mapping, the Module and seldon.io/gateway-cors (accepted: %s)', (text, accepted) => {
    const p = places(text);
    expect(p.module).toEqual(p.mapping);
    expect(p.annotation).toEqual(p.mapping);
    expect(p.mapping !== REFUSED && p.mapping !== undefined && (p.mapping as Got).ok !== false).toBe(accepted);
  });
});

describe('durations: one grammar (routing/values/duration.ts); per_try_timeout a string, as Emissary types it', () => {
  it.each([
    ['"0.5s"', 500],
    ['500ms', 500],
    ['"1m30s"', 90_000],
    ['0.5', null],
    ['2', null],
    ['"2"', null],
    ['"-1s"', null],
  ])('per_try_timeout: %s in a Mapping and in the Module: %s ms (null: refused)', (text, ms) => {
    const m = mapping(`retry_policy:\n  retry_on: 5xx\n  per_try_timeout: ${text}`);
    expect(m.ok ? (m.value as { retry: { perTryTimeoutMs: number } }).retry.perTryTimeoutMs : null).toBe(ms);
    const r = module(`retry_policy:\n  retry_on: 5xx\n  per_try_timeout: ${text}`);
    expect(r.keys[0]!.class === 'honoured' ? r.module.retryPolicy!.perTryTimeoutMs : null).toBe(ms);
    // The annotations' durations (rollouts, outliers, flow control) read the same grammar.
    expect(parseDuration(parseYaml(text) as unknown)).toBe(ms);
  });

  it('a bare YAML number says why it is refused', () => {
    expect(parseRetry({ retry_on: '5xx', per_try_timeout: 0.5 })).toBe('retry_policy.per_try_timeout 0.5 is not a duration string like "500ms" or "2s" (a bare number has no unit; quote it with one)');
  });
});

describe('durations: the same text in a Mapping, the Module, an annotation, an operator file and a flag', () => {
  /** What a flag's reader made of `text`: its ms, or null (refused with exit 2). */
  const flag = (text: string): number | null => {
    try {
      return flagDuration('default-timeout', text);
    } catch (e) {
      expect(e).toBeInstanceOf(UsageError);
      return null;
    }
  };
  const sink = (text: string): number | null => {
    try {
      return parseLogSinks(`- name: a\n  type: file\n  path: /tmp/a\n  timeout: ${JSON.stringify(text)}\n`)[0]!.timeoutMs;
    } catch {
      return null;
    }
  };
  const rows: [string, number | null][] = [
    ['500ms', 500],
    ['0.5s', 500],
    ['1m30s', 90_000],
    ['1d', 86_400_000],
    ['0.1s', 100],
    [' 3 s ', 3000],
    ['0', 0],
    ['0s', 0],
    ['3', null],
    ['2.5', null],
    ['1.5ms', null],
    ['0.0004s', null],
    ['1.0005s', null],
    ['-1s', null],
    ['5w', null],
    ['', null],
  ];

  it.each(rows)('%j: %s ms everywhere (null: refused everywhere)', (text, ms) => {
    const m = mapping(`retry_policy:\n  retry_on: 5xx\n  per_try_timeout: ${JSON.stringify(text)}`);
    const r = module(`retry_policy:\n  retry_on: 5xx\n  per_try_timeout: ${JSON.stringify(text)}`);
    const flow = parseFlowFields(`queueTimeout: ${JSON.stringify(text)}`);
    const outlier = parseOutlierFields(`slowStart: ${JSON.stringify(text)}`);
    expect({
      mapping: m.ok ? (m.value as { retry: { perTryTimeoutMs: number } }).retry.perTryTimeoutMs : null,
      module: r.keys[0]!.class === 'honoured' ? r.module.retryPolicy!.perTryTimeoutMs : null,
      flowAnnotation: flow.ok ? (flow.value as { queueTimeoutMs: number }).queueTimeoutMs : null,
      outlierAnnotation: outlier.ok ? (outlier.value as { slowStartMs: number }).slowStartMs : null,
      flag: flag(text),
      // A sink's timeout is at least 1 ms by its own rule.
      logSinks: sink(text),
    }).toEqual({ mapping: ms, module: ms, flowAnnotation: ms, outlierAnnotation: ms, flag: ms, logSinks: ms === 0 ? null : ms });
  });

  it("a flag says why, in the gateway's words", () => {
    expect(() => flagDuration('grace-period', '1.5ms')).toThrow('--grace-period: "1.5ms" is not a whole number of milliseconds');
    expect(() => flagDuration('grace-period', '3')).toThrow('--grace-period: "3" has no unit: durations take ms, s, m, h or d (3ms, 3s)');
  });
});

describe('ports: one reader (routing/values/port.ts), 1..65535', () => {
  const attempt = (f: () => number | null | undefined): number | null => {
    try {
      return f() ?? null;
    } catch {
      return null;
    }
  };
  const flags = (argv: string[]) => createReader('serve', argv, {}, OPTIONS);
  /** A predictor's status endpoint, as Seldon's operator writes it. */
  const seldon = (text: string): number | null => {
    const d = { metadata: { name: 'd' }, spec: { name: 's' }, status: { serviceStatus: { 'd-p': { httpEndpoint: `d-p.ns:${text}` } } } } as unknown as SeldonDeployment;
    const s = predictorService(d, { name: 'p' } as never, 'ns', {} as CompileOptions);
    return typeof s === 'string' ? null : s.httpPort;
  };
  it.each([
    ['80', 80],
    ['8080', 8080],
    ['65535', 65535],
    ['0', null],
    ['65536', null],
    ['99999', null],
  ] as [string, number | null][])('%s: %s in a SeldonDeployment, a Mapping, a CORS origin and every flag (null: refused)', (text, port) => {
    const cfg = parseCustomConfig(`apiVersion: getambassador.io/v2\nkind: Mapping\nname: m\nprefix: /seldon/ns/m/\nservice: m-svc:${text}\n`, 'ns');
    const cors = parseCorsPolicy({ origins: `https://a.example:${text}` }, 'cors');
    expect({
      seldon: seldon(text),
      mapping: cfg.ok ? (cfg.mappings[0] as unknown as { service: { port: number } }).service.port : null,
      cors: cors.ok ? port : null,
      defaultHttpPort: attempt(() => buildRouteDefaults(flags(['--default-http-port', text])).defaultHttpPort),
      extAuth: attempt(() => buildExtAuth(flags(['--ext-auth-service', `auth:${text}`]))?.port),
      fallbackTarget: attempt(() => parseFallbackTarget(`b=http://h:${text}`).port),
      logSinkUrl: attempt(() => (parseLogSinks(`- name: a\n  type: cloudevents\n  url: http://h:${text}/\n`), port)),
    }).toEqual({ seldon: port, mapping: port, cors: port, defaultHttpPort: port, extAuth: port, fallbackTarget: port, logSinkUrl: port });
  });

  it("0 is a listener's flag's own meaning (any free port), and nobody else's", () => {
    expect(flags(['--port', '0']).port('port')).toBe(0);
    expect(() => buildRouteDefaults(flags(['--default-http-port', '0']))).toThrow('--default-http-port: 0 is not a port (1..65535)');
    expect(() => parseFallbackTarget('b=http://h:0')).toThrow('port 0 is not a port (1..65535)');
  });
});

describe('sizes: one reader (routing/values/size.ts)', () => {
  const attempt = (f: () => number | undefined): number | null => {
    try {
      return f() ?? null;
    } catch {
      return null;
    }
  };
  it.each([
    ['4096', 4096],
    ['4KiB', 4096],
    ['4 kib', 4096],
    ['4Ki', 4096],
    ['4KB', 4000],
    ['1MiB', 1024 ** 2],
    ['1Mi', 1024 ** 2],
    ['4k', null],
    ['4K', null],
    ['1M', null],
    ['1.5KiB', null],
    ['-1', null],
    ['4XB', null],
  ] as [string, number | null][])('%s: %s bytes on a flag, in --log-sinks and in seldon.io/gateway-log (null: refused)', (text, bytes) => {
    const ann = parseLogFields(`maxBodyBytes: ${JSON.stringify(text)}`, undefined);
    expect({
      flag: attempt(() => flagBytes('max-body', text)),
      logSinks: attempt(() => parseLogSinks(`- name: a\n  type: file\n  path: /tmp/a\n  queueBytes: ${JSON.stringify(text)}\n`)[0]!.queueBytes),
      annotation: ann.ok && ann.value !== 'off' ? (ann.value.maxBodyBytes ?? null) : null,
    }).toEqual({ flag: bytes, logSinks: bytes, annotation: bytes });
  });

  it('a lone k, K, M or G says why it is refused', () => {
    expect(() => flagBytes('max-body', '4K')).toThrow('--max-body: "4K" is not a size like 1048576, 512KiB or 4MiB (a lone "K" is ambiguous: write KiB for powers of 1024 or KB for powers of 1000)');
    const ann = parseLogFields('maxBodyBytes: 64k', undefined);
    expect(ann.ok ? null : ann.error).toMatch(/maxBodyBytes: "64k" is not a size .*ambiguous/);
  });
});

describe('percentages: one reader (routing/values/percent.ts)', () => {
  /** Each annotation's reading of `text` as a percent (null: refused), its own range aside. */
  function places(yamlText: string): Record<string, number | null> {
    const bandit = parseBanditAnnotation(`floor: ${yamlText}`, ['a', 'b']);
    const hedge = parseHedgeFields(`budget: ${yamlText}`);
    const errors = parseRolloutAnnotation(`canary: v2\nmaxErrorRate: ${yamlText}`, ['main', 'v2']);
    const shift = parseRolloutAnnotation(`canary: v2\nmaxLatencyShift: ${yamlText}`, ['main', 'v2']);
    const agreement = parseRolloutAnnotation(`canary: v2\nmirror: {minAgreement: ${yamlText}}`, ['main', 'v2']);
    const pct = (x: number): number => Math.round(x * 1e9) / 1e7;
    return {
      banditFloor: bandit.ok ? bandit.value.floor : null,
      hedgeBudget: hedge.ok && hedge.value !== 'off' ? pct((hedge.value as { budget: number }).budget) : null,
      rolloutMaxErrorRate: errors.ok ? pct((errors.value.maxErrorRate as { rate: number }).rate) : null,
      rolloutMaxLatencyShift: shift.ok ? pct(shift.value.maxLatencyShift) : null,
      rolloutMinAgreement: agreement.ok ? pct(agreement.value.mirror!.minAgreement) : null,
    };
  }
  const every = (p: number | null) => ({ banditFloor: p, hedgeBudget: p, rolloutMaxErrorRate: p, rolloutMaxLatencyShift: p, rolloutMinAgreement: p });

  it.each([
    ['"2%"', 2],
    ['2%', 2],
    ['"2.5 %"', 2.5],
    ['"0.5%"', 0.5],
    // A bare number could be a fraction (a bandit's epsilon is one): refused where the key does not count percents.
    ['2', null],
    ['"2"', null],
    ['0.02', null],
    ['"-2%"', null],
    ['"2 percent"', null],
  ] as [string, number | null][])('%s: %s everywhere (null: refused)', (text, want) => {
    expect(places(text)).toEqual(every(want));
  });

  it('a rise, +N%, is read where the key reads one, and refused elsewhere', () => {
    expect(places('"+2%"')).toEqual({ banditFloor: null, hedgeBudget: null, rolloutMaxErrorRate: 2, rolloutMaxLatencyShift: 2, rolloutMinAgreement: null });
  });

  it('a bare number is a percent where the key says so: mirror.percent and steps', () => {
    const r = parseRolloutAnnotation('canary: v2\nmirror: {percent: 50}\nsteps: [1, "5%", 10]', ['main', 'v2']);
    expect(r.ok && [r.value.mirror!.percent, r.value.steps]).toEqual([50, [1, 5, 10]]);
    expect(parseRolloutAnnotation('canary: v2\nsteps: [-1, 5]', ['main', 'v2']).ok).toBe(false);
  });
});
