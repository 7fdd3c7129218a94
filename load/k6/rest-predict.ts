/**
 * REST predictions at a target rate through seldon-gateway.
 *
 *   k6 run -e GATEWAY=http://localhost:8080 -e NAMESPACE=seldon -e DEPLOYMENT=iris -e RATE=200 -e DURATION=2m load/k6/rest-predict.ts
 *
 * Environment: GATEWAY (public URL, default http://localhost:8080), NAMESPACE (seldon),
 * DEPLOYMENT (iris), RATE (requests per second, 100), DURATION (1m), VUS (pre-allocated, 50),
 * MAX_VUS (500), PAYLOAD (JSON body) or PAYLOAD_FILE (path), PATH_SUFFIX (/api/v1.0/predictions),
 * TOKEN (OAuth bearer token), P99_MS (threshold on p99 latency, 500), HEADERS (extra headers as
 * JSON, e.g. '{"x-region":"eu"}' for a header route).
 */
import { check } from 'k6';
import http from 'k6/http';
import type { Options } from 'k6/options';
import { predictUrl, requestHeaders } from './lib.ts';

const env = (name: string, dflt: string): string => __ENV[name] || dflt;
const RATE = Number(env('RATE', '100'));
const P99_MS = Number(env('P99_MS', '500'));
const URL = predictUrl(env('GATEWAY', 'http://localhost:8080'), env('NAMESPACE', 'seldon'), env('DEPLOYMENT', 'iris'), env('PATH_SUFFIX', '/api/v1.0/predictions'));
const BODY = __ENV.PAYLOAD_FILE ? open(__ENV.PAYLOAD_FILE) : env('PAYLOAD', '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
const HEADERS = requestHeaders(__ENV.TOKEN, JSON.parse(env('HEADERS', '{}')) as Record<string, string>);

export const options: Options = {
  scenarios: {
    predict: {
      executor: 'constant-arrival-rate',
      rate: RATE,
      timeUnit: '1s',
      duration: env('DURATION', '1m'),
      preAllocatedVUs: Number(env('VUS', '50')),
      maxVUs: Number(env('MAX_VUS', '500')),
    },
  },
  discardResponseBodies: true,
  thresholds: {
    http_req_failed: ['rate<0.01'],
    'http_req_duration{expected_response:true}': [`p(99)<${P99_MS}`],
    checks: ['rate>0.99'],
    // The target rate was reached: k6 had enough VUs.
    dropped_iterations: ['count<1'],
  },
};

export default function (): void {
  const res = http.post(URL, BODY, { headers: HEADERS, tags: { name: 'predict' } });
  check(res, {
    'status is 200': (r) => r.status === 200,
  });
}
