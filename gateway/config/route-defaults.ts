/** What a route gets when its SeldonDeployment is silent (listed under Upstream in `--help`): routing's CompileOptions from these rows. */
import type { CompileOptions } from '../../routing/types.js';
import { BOTH, env, type OptionSpec } from './option.js';
import type { Reader } from './read.js';

export const ROUTE_DEFAULT_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'default-timeout',
    section: 'upstream',
    env: env('default-timeout'),
    kind: 'duration',
    default: '3000ms',
    commands: BOTH,
    help: 'Request timeout of routes without seldon.io/rest-timeout / grpc-timeout.',
  },
  { flag: 'default-idle-timeout', section: 'upstream', env: env('default-idle-timeout'), kind: 'duration', default: '300000ms', commands: BOTH, help: 'Stream idle timeout of routes that set none.' },
  {
    flag: 'default-http-port',
    section: 'upstream',
    value: 'port',
    env: env('default-http-port'),
    kind: 'int',
    default: '8000',
    commands: BOTH,
    help: "Executor REST port when the SeldonDeployment status is silent (the operator's ENGINE_SERVER_PORT); 1..65535, as every port.",
  },
  {
    flag: 'default-grpc-port',
    section: 'upstream',
    value: 'port',
    env: env('default-grpc-port'),
    kind: 'int',
    default: '5001',
    commands: BOTH,
    help: 'Executor gRPC port when the status is silent (ENGINE_SERVER_GRPC_PORT).',
  },
  {
    flag: 'legacy-service-naming',
    section: 'upstream',
    env: env('legacy-service-naming'),
    kind: 'boolean',
    commands: BOTH,
    help: 'Use Seldon <= 0.3 Service names (<spec.name>-<sdep>, one Service for all predictors).',
  },
];

export type RouteDefaults = Pick<CompileOptions, 'defaultTimeoutMs' | 'defaultIdleTimeoutMs' | 'defaultHttpPort' | 'defaultGrpcPort' | 'legacyServiceNaming'>;

export function buildRouteDefaults(read: Reader): RouteDefaults {
  return {
    defaultTimeoutMs: read.duration('default-timeout'),
    defaultIdleTimeoutMs: read.duration('default-idle-timeout'),
    defaultHttpPort: read.servicePort('default-http-port'),
    defaultGrpcPort: read.servicePort('default-grpc-port'),
    legacyServiceNaming: read.bool('legacy-service-naming'),
  };
}
