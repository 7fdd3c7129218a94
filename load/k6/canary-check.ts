/**
 * Canary check: send REQUESTS predictions to a SeldonDeployment and report the split observed per
 * predictor against the configured one. Reads the `x-seldon-predictor` answer header, which the
 * gateway adds only when started with --predictor-header (SELDON_GATEWAY_PREDICTOR_HEADER=true).
 * Fails (exit code 99, thresholds) when a predictor is off by more than the tolerance, a 0%
 * predictor got anything, or an answer did not name its predictor.
 *
 *   k6 run -e GATEWAY=http://localhost:8080 -e ADMIN=http://localhost:8877 -e NAMESPACE=seldon -e DEPLOYMENT=income load/k6/canary-check.ts
 *   k6 run -e GATEWAY=http://localhost:8080 -e DEPLOYMENT=income -e EXPECTED=main=75,canary=25 load/k6/canary-check.ts
 *
 * Environment: GATEWAY (public URL, http://localhost:8080), NAMESPACE (seldon), DEPLOYMENT
 * (required), EXPECTED (`<predictor>=<percent>,…`; default: read from ADMIN's /routes), ADMIN
 * (admin URL, used when EXPECTED is not given), REQUESTS (2000), BATCH (requests in parallel,
 * 20), TOLERANCE (allowed distance in percentage points; default 4 standard deviations), PAYLOAD,
 * TOKEN (OAuth bearer token), HEADERS (extra headers as JSON).
 */
import { check, fail } from 'k6';
import http from 'k6/http';
import type { Options } from 'k6/options';
import { expectedSplit, formatSplitReport, headerValue, parseSplit, predictUrl, requestHeaders, splitReport, type RoutesJson } from './lib.ts';

const env = (name: string, dflt: string): string => __ENV[name] || dflt;
const NAMESPACE = env('NAMESPACE', 'seldon');
const DEPLOYMENT = __ENV.DEPLOYMENT || fail('set DEPLOYMENT (and NAMESPACE)');
const URL = predictUrl(env('GATEWAY', 'http://localhost:8080'), NAMESPACE, DEPLOYMENT);
const REQUESTS = Number(env('REQUESTS', '2000'));
const BATCH = Number(env('BATCH', '20'));
const BODY = env('PAYLOAD', '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
const HEADERS = requestHeaders(__ENV.TOKEN, JSON.parse(env('HEADERS', '{}')) as Record<string, string>);
const TOLERANCE = __ENV.TOLERANCE ? Number(__ENV.TOLERANCE) : undefined;

export const options: Options = {
  scenarios: { canary: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: '30m' } },
  thresholds: { checks: ['rate==1'] },
};

/** The configured split: EXPECTED, or the deployment's REST route in the admin /routes. */
export function setup(): Record<string, number> {
  if (__ENV.EXPECTED) return parseSplit(__ENV.EXPECTED);
  if (!__ENV.ADMIN) fail('set EXPECTED (e.g. main=75,canary=25) or ADMIN (the gateway admin URL, to read /routes)');
  const res = http.get(`${__ENV.ADMIN.replace(/\/+$/, '')}/routes`);
  if (res.status !== 200) fail(`${__ENV.ADMIN}/routes answered ${res.status}`);
  return expectedSplit(res.json() as unknown as RoutesJson, NAMESPACE, DEPLOYMENT);
}

export default function (expected: Record<string, number>): void {
  const counts: Record<string, number> = {};
  const statuses: Record<string, number> = {};
  let unnamed = 0;
  for (let sent = 0; sent < REQUESTS;) {
    const n = Math.min(BATCH, REQUESTS - sent);
    const batch = http.batch(Array.from({ length: n }, () => ({ method: 'POST', url: URL, body: BODY, params: { headers: HEADERS, tags: { name: 'predict' } } })));
    for (const r of batch) {
      statuses[String(r.status)] = (statuses[String(r.status)] ?? 0) + 1;
      const predictor = headerValue(r.headers, 'x-seldon-predictor');
      if (predictor === undefined) unnamed++;
      else counts[predictor] = (counts[predictor] ?? 0) + 1;
    }
    sent += n;
  }
  const report = splitReport(counts, statuses, unnamed, expected, TOLERANCE);
  console.log(`\n${NAMESPACE}/${DEPLOYMENT}: ${formatSplitReport(report)}`);
  check(report, {
    'every answer named its predictor (gateway --predictor-header)': (r) => r.unnamed === 0,
    'observed split within tolerance of the configured one': (r) => r.rows.every((x) => x.ok),
  });
}
