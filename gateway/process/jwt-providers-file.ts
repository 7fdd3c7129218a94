/**
 * The --jwt-providers file while the gateway runs (process/operator-file.ts: watched, read again when
 * it changes, applied when it parses): each process compiles its table again under the new
 * provider names (a deployment naming a provider that is gone degrades, with the reason in
 * /routes, the log and an Event) and replaces its key sets (auth/jwt-keys.ts `ProviderKeySets`:
 * unchanged providers keep their keys). A file that does not parse changes nothing, and is logged
 * and counted once per content; the control plane reads it, the workers get the result over IPC.
 */
import type { Logger } from 'pino';
import { parseJwtProviders, providerNames, type JwtProviderConfig } from '../config/jwt.js';
import type { ProviderKeySets } from '../auth/jwt-keys.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import type { RouteState } from './route-state.js';
import { OperatorFile, sameNames } from './operator-file.js';

/** One process takes the providers as the file now says: its table (when the names changed) and its key sets. */
export function applyJwtProviders(state: RouteState, keys: ProviderKeySets | undefined, providers: readonly JwtProviderConfig[]): void {
  keys?.replace(providers);
  const names = providerNames(providers);
  if (!sameNames(state.options.jwtProviders, names)) state.reconfigure({ ...state.options, jwtProviders: names });
}

/** The --jwt-providers file while serving (process/operator-file.ts): watched, and applied to every process when it changes. */
export class JwtProvidersFile extends OperatorFile<readonly JwtProviderConfig[]> {
  constructor(path: string, current: readonly JwtProviderConfig[], apply: (providers: readonly JwtProviderConfig[]) => void, deps: { readonly log: Logger; readonly metrics: GatewayMetrics }) {
    super(path, current, {
      parse: parseJwtProviders,
      apply,
      log: deps.log,
      counted: (result) => deps.metrics.jwtProviderReloads.labels(result).inc(),
      what: 'JWT providers',
      described: (providers) => ({ providers: providers.map((p) => p.name) }),
    });
  }
}
