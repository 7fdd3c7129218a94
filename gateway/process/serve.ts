/**
 * `seldon-gateway serve` in one process: the control plane (control-plane.ts) with its data plane
 * in this process (local-plane.ts). The CLI runs the same control plane in a cluster primary with
 * a data plane per worker (cluster.ts); tests and the quick start run this one.
 */
import type { Logger } from 'pino';
import type { GatewayConfig } from '../config/parse.js';
import type { AccessSink } from '../observe/access-log.js';
import type { Clock } from '../upstream/clock.js';
import { startControlPlane, type Gateway } from './control-plane.js';
import { LocalDataPlane } from './local-plane.js';
import { createLogger } from './logger.js';
import { endpointsFor, sourceFor } from './sources.js';
import type { DeploymentSource } from '../../source/source.js';

export type { Gateway } from './control-plane.js';
export { createLogger } from './logger.js';

/** `now`: the clock OAuth token expiry is read from; `clock`: the request path's time and timers (tests move them instead of sleeping). */
export async function startGateway(config: GatewayConfig, options: { source?: DeploymentSource; logger?: Logger; accessSink?: AccessSink; now?: () => number; clock?: Clock } = {}): Promise<Gateway> {
  const log = options.logger ?? createLogger(config.process.logLevel);
  const source = options.source ?? sourceFor(config.source, { log });
  const endpoints = await endpointsFor(config, source, log);
  const plane = await LocalDataPlane.open(config, log, { endpoints, ...(options.accessSink ? { accessSink: options.accessSink } : {}), now: options.now, clock: options.clock });
  return startControlPlane(config, { log, source, state: plane.state, metrics: plane.metrics, planes: plane });
}
