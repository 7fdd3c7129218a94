/**
 * Shadow check: send REQUESTS predictions to a shadowed SeldonDeployment, then report, from the
 * gateway's admin /metrics before and after, how many were mirrored to each shadow, dropped or
 * failed, and how often the shadow's answer agreed with the primary's (the gateway compares when
 * started with --shadow-compare). The last disagreeing pairs are printed from /diagnostics.
 * Fails when fewer than MIN_MIRRORED of the expected mirrors were sent, or agreement is below
 * MIN_AGREEMENT.
 *
 *   k6 run -e GATEWAY=http://localhost:8080 -e ADMIN=http://localhost:8877 -e NAMESPACE=seldon -e DEPLOYMENT=churn load/k6/shadow-check.ts
 *
 * GATEWAY and ADMIN must reach the same gateway process (with several replicas, port-forward
 * both ports of one pod: `kubectl port-forward pod/<gateway-pod> 8080 8877`).
 *
 * Environment: GATEWAY, ADMIN (required), NAMESPACE (seldon), DEPLOYMENT (required), REQUESTS
 * (500), BATCH (10), SETTLE (seconds to wait for the last mirrors, 3), MIN_MIRRORED (fraction of
 * the expected mirrors that must be sent, 0.99), MIN_AGREEMENT (percent, 0 = report only),
 * PAYLOAD, TOKEN, HEADERS.
 */
import { check, fail, sleep } from 'k6';
import http from 'k6/http';
import type { Options } from 'k6/options';
import { expectedMirrors, formatShadowReport, parsePrometheus, predictUrl, requestHeaders, shadowReport, type RoutesJson } from './lib.ts';

const env = (name: string, dflt: string): string => __ENV[name] || dflt;
const ADMIN = (__ENV.ADMIN || fail('set ADMIN (the gateway admin URL, e.g. http://localhost:8877)')).replace(/\/+$/, '');
const NAMESPACE = env('NAMESPACE', 'seldon');
const DEPLOYMENT = __ENV.DEPLOYMENT || fail('set DEPLOYMENT (and NAMESPACE)');
const URL = predictUrl(env('GATEWAY', 'http://localhost:8080'), NAMESPACE, DEPLOYMENT);
const REQUESTS = Number(env('REQUESTS', '500'));
const BATCH = Number(env('BATCH', '10'));
const BODY = env('PAYLOAD', '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
const HEADERS = requestHeaders(__ENV.TOKEN, JSON.parse(env('HEADERS', '{}')) as Record<string, string>);
const MIN_MIRRORED = Number(env('MIN_MIRRORED', '0.99'));
const MIN_AGREEMENT = Number(env('MIN_AGREEMENT', '0'));

export const options: Options = {
  scenarios: { shadow: { executor: 'per-vu-iterations', vus: 1, iterations: 1, maxDuration: '30m' } },
  thresholds: { checks: ['rate==1'] },
};

function scrape(): string {
  const res = http.get(`${ADMIN}/metrics`, { tags: { name: 'admin' } });
  if (res.status !== 200) fail(`${ADMIN}/metrics answered ${res.status}`);
  return String(res.body);
}

export default function (): void {
  const routes = http.get(`${ADMIN}/routes`, { tags: { name: 'admin' } });
  if (routes.status !== 200) fail(`${ADMIN}/routes answered ${routes.status}`);
  const mirrors = expectedMirrors(routes.json() as unknown as RoutesJson, NAMESPACE, DEPLOYMENT);
  if (!mirrors.length) fail(`${NAMESPACE}/${DEPLOYMENT} has no shadow predictor`);
  const before = parsePrometheus(scrape());
  let ok = 0;
  for (let sent = 0; sent < REQUESTS;) {
    const n = Math.min(BATCH, REQUESTS - sent);
    const batch = http.batch(Array.from({ length: n }, () => ({ method: 'POST', url: URL, body: BODY, params: { headers: HEADERS, tags: { name: 'predict' } } })));
    for (const r of batch) if (r.status === 200) ok++;
    sent += n;
  }
  sleep(Number(env('SETTLE', '3')));
  const rows = shadowReport(before, parsePrometheus(scrape()), NAMESPACE, mirrors, REQUESTS);
  console.log(`\n${NAMESPACE}/${DEPLOYMENT}: ${ok}/${REQUESTS} primary answers 200\n${formatShadowReport(rows, REQUESTS)}`);
  const diag = http.get(`${ADMIN}/diagnostics`, { tags: { name: 'admin' } });
  if (diag.status === 200) {
    const last =
      (diag.json() as { disagreements?: { at: string; deployment: string; namespace: string; why: string; primary: { predictor: string }; shadow: { predictor: string } }[] }).disagreements ?? [];
    for (const d of last.filter((x) => x.namespace === NAMESPACE && x.deployment === DEPLOYMENT).slice(0, 5)) {
      console.log(`  disagreement ${d.at}: ${d.primary.predictor} vs shadow ${d.shadow.predictor}: ${d.why}`);
    }
  }
  check(rows, {
    'the primary answered': () => ok === REQUESTS,
    'mirrors were sent': (r) => r.every((x) => x.mirrored + x.failed >= MIN_MIRRORED * x.expected),
    'shadows agree with the primary': (r) => r.every((x) => x.agreement === null || x.agreement >= MIN_AGREEMENT),
  });
}
