/**
 * gRPC predictions (seldon.protos.Seldon/Predict) at a target rate through seldon-gateway, on
 * the same public port as REST (h2c), routed by the `seldon` and `namespace` metadata.
 *
 *   k6 run -e GATEWAY_GRPC=localhost:8080 -e NAMESPACE=seldon -e DEPLOYMENT=iris -e RATE=200 load/k6/grpc-predict.ts
 *
 * Environment: GATEWAY_GRPC (host:port, default localhost:8080), NAMESPACE (seldon), DEPLOYMENT
 * (iris), RATE (calls per second, 100), DURATION (1m), VUS (50), MAX_VUS (500), TLS (true: TLS
 * to the gateway; default plaintext h2c), PROTO_DIR and PROTO_FILE (the Seldon protos; default
 * the copies in test/protos), METHOD (seldon.protos.Seldon/Predict), MESSAGE (the request as
 * proto3 JSON), TOKEN (OAuth bearer token, sent as `authorization` metadata), P99_MS (500).
 */
import { check } from 'k6';
import exec from 'k6/execution';
import grpc from 'k6/net/grpc';
import type { Options } from 'k6/options';

const env = (name: string, dflt: string): string => __ENV[name] || dflt;
const TARGET = env('GATEWAY_GRPC', 'localhost:8080');
const METHOD = env('METHOD', 'seldon.protos.Seldon/Predict');
const MESSAGE = JSON.parse(env('MESSAGE', '{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}')) as object;
const METADATA: Record<string, string> = { seldon: env('DEPLOYMENT', 'iris'), namespace: env('NAMESPACE', 'seldon'), ...(__ENV.TOKEN ? { authorization: `Bearer ${__ENV.TOKEN}` } : {}) };
const P99_MS = Number(env('P99_MS', '500'));

const client = new grpc.Client();
client.load([env('PROTO_DIR', '../../test/protos')], env('PROTO_FILE', 'seldon.proto'));

export const options: Options = {
  scenarios: {
    predict: {
      executor: 'constant-arrival-rate',
      rate: Number(env('RATE', '100')),
      timeUnit: '1s',
      duration: env('DURATION', '1m'),
      preAllocatedVUs: Number(env('VUS', '50')),
      maxVUs: Number(env('MAX_VUS', '500')),
    },
  },
  thresholds: {
    checks: ['rate>0.99'],
    grpc_req_duration: [`p(99)<${P99_MS}`],
    dropped_iterations: ['count<1'],
  },
};

export default function (): void {
  // One connection per VU, opened on its first iteration and kept.
  if (exec.vu.iterationInScenario === 0) client.connect(TARGET, { plaintext: env('TLS', 'false') !== 'true', timeout: '5s' });
  const res = client.invoke(METHOD, MESSAGE, { metadata: METADATA, timeout: '5s', tags: { name: 'predict' } });
  check(res, {
    'status is OK': (r) => r !== undefined && r.status === grpc.StatusOK,
  });
}
