/** Listen: the public port and its optional extra listeners (the admin port is admin.ts's). */
import type { AdminListenConfig } from './admin.js';
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';

export const LISTEN_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'port',
    section: 'listen',
    value: 'port',
    env: env('port'),
    kind: 'int',
    default: '8080',
    commands: SERVE,
    help: 'Public port: REST (HTTP/1.1 and h2c) and gRPC (h2c) on one listener, as Ambassador had.',
  },
  { flag: 'host', section: 'listen', value: 'address', env: env('host'), kind: 'string', default: '0.0.0.0', commands: SERVE, help: 'Address the public port binds to.' },
  { flag: 'grpc-port', section: 'listen', value: 'port', env: env('grpc-port'), kind: 'int', commands: SERVE, help: 'Optional extra port that serves h2c gRPC only.' },
  {
    flag: 'oauth-port',
    section: 'listen',
    value: 'port',
    env: env('oauth-port'),
    kind: 'int',
    commands: SERVE,
    help: "Optional extra listener (REST and gRPC) for clients of Seldon 0.x's OAuth API front end, which used their own port; it serves what the public port serves.",
  },
  {
    flag: 'keda-port',
    section: 'listen',
    value: 'port',
    env: env('keda-port'),
    kind: 'int',
    commands: SERVE,
    help: "Serve KEDA's external scaler (gRPC externalscaler.ExternalScaler) on this port, on --host, from the primary process: a ScaledObject scales a predictor under flow control on its queued plus in-flight requests, summed over the replicas that share --redis-url, from zero (docs/keda.md). Never the public port.",
  },
];

/** Where the gateway listens: the public port and its optional extras, the admin port. */
export interface ListenConfig extends AdminListenConfig {
  readonly port: number;
  readonly host: string;
  readonly grpcPort: number | undefined;
  readonly oauthPort: number | undefined;
  /** KEDA's external scaler (gateway/keda/), when set. */
  readonly kedaPort: number | undefined;
}

export function buildListen(read: Reader): Omit<ListenConfig, keyof AdminListenConfig> {
  return { port: read.port('port'), host: read.str('host'), grpcPort: read.optPort('grpc-port'), oauthPort: read.optPort('oauth-port'), kedaPort: read.optPort('keda-port') };
}
