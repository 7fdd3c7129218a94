/**
 * `parseConfig`: argv and the environment into a GatewayConfig, each section built by its own file
 * from its own rows. Flags win over env, env over the rows' defaults.
 */
import { buildCompression } from './compression.js';
import type { CompileOptions } from '../../routing/types.js';
import { buildAdmin } from './admin.js';
import { buildModule, moduleCompile, moduleEdge, type ModuleConfig } from './ambassador-module.js';
import { buildAuth, type AuthConfig } from './auth.js';
import { buildEdge, type EdgeConfig } from './edge.js';
import { buildExtAuth, buildExtAuthDefault, type ExtAuthConfig } from './ext-auth.js';
import { buildFallbackTargets, type FallbackTarget } from './fallback-targets.js';
import { buildJwtProviders, providerNames, type JwtProviderConfig } from './jwt.js';
import { buildListen, type ListenConfig } from './listen.js';
import { buildLogSinks, sinkNames, type LogSinkConfig } from './log-sinks.js';
import { buildObserve, type ObserveConfig } from './observe.js';
import type { Command } from './option.js';
import { OPTIONS } from './options.js';
import { buildProcess, type ProcessConfig } from './process.js';
import { createReader } from './read.js';
import { buildRouteDefaults } from './route-defaults.js';
import { buildShadow, buildShadowCompare, type ShadowConfig } from './shadows.js';
import { buildSource, type SourceConfig } from './source.js';
import { buildTls, type TlsConfig } from './tls.js';
import { buildUpstream, type UpstreamConfig } from './upstream.js';

export interface GatewayConfig {
  readonly listen: ListenConfig;
  readonly source: SourceConfig;
  readonly process: ProcessConfig;
  readonly upstream: UpstreamConfig;
  readonly shadow: ShadowConfig;
  readonly edge: EdgeConfig;
  readonly auth: AuthConfig;
  /** undefined: no --ext-auth-service. */
  readonly extAuth: ExtAuthConfig | undefined;
  /** --jwt-providers: the identity providers seldon.io/gateway-jwt may name (empty: none). */
  readonly jwtProviders: readonly JwtProviderConfig[];
  /** The file they were read from, watched while the gateway runs; undefined: no --jwt-providers (no JWT at all). */
  readonly jwtProvidersFile: string | undefined;
  /** --log-sinks: where seldon.io/gateway-log may send events (empty: none). */
  readonly logSinks: readonly LogSinkConfig[];
  /** The file they were read from, watched while the gateway runs; undefined: no --log-sinks (nothing is logged). */
  readonly logSinksFile: string | undefined;
  readonly observe: ObserveConfig;
  /** --fallback-target: the addresses seldon.io/gateway-fallback may name, by name (empty: none). */
  readonly fallbackTargets: ReadonlyMap<string, FallbackTarget>;
  /** undefined: no --tls-cert / --tls-dir, the public port is cleartext only. */
  readonly tls: TlsConfig | undefined;
  /** --ambassador-module: the Module, its file, and the settings it was applied over (config/ambassador-module.ts). */
  readonly module: ModuleConfig;
  /** The routing compiler's options (routing/types.ts). */
  readonly compile: CompileOptions;
  /** routes --json */
  readonly json: boolean;
}

/** Parse argv (after the sub-command) and the environment. Throws UsageError on bad input. */
export function parseConfig(command: Command, argv: readonly string[], environment: NodeJS.ProcessEnv = process.env): GatewayConfig & { help: boolean } {
  const read = createReader(command, argv, environment, OPTIONS);
  const { source, served } = buildSource(read);
  const { file: jwtProvidersFile, providers: jwtProviders } = buildJwtProviders(read);
  const auth = buildAuth(read);
  const upstream = buildUpstream(read);
  const { file: logSinksFile, sinks: logSinks } = buildLogSinks(read, auth.redisUrl, command === 'serve');
  const fallbackTargets = buildFallbackTargets(read);
  const edge = buildEdge(read);
  const compile: CompileOptions = {
    ...served,
    ...buildRouteDefaults(read),
    extAuthDefault: buildExtAuthDefault(read),
    jwtProviders: providerNames(jwtProviders),
    logSinks: sinkNames(logSinks),
    tlsContexts: new Set(upstream.tlsContexts.keys()),
    compression: buildCompression(read),
    fallbackTargets: new Set(fallbackTargets.keys()),
  };
  // The Module's settings over the flags' defaults; a flag given explicitly wins.
  const module = buildModule(read, edge, compile);
  return {
    help: read.bool('help'),
    json: read.bool('json'),
    listen: { ...buildListen(read), ...buildAdmin(read) },
    source,
    process: buildProcess(read),
    upstream,
    shadow: buildShadow(read),
    edge: { ...edge, ...moduleEdge(module.base, module.module) },
    auth,
    // Only serve dials the auth service; routes needs to know whether one is set (extAuthDefault).
    extAuth: command === 'serve' ? buildExtAuth(read) : undefined,
    jwtProviders,
    jwtProvidersFile,
    logSinks,
    logSinksFile,
    fallbackTargets,
    tls: buildTls(read),
    observe: { ...buildObserve(read), shadowCompare: buildShadowCompare(read) },
    module,
    compile: { ...compile, ...moduleCompile(module.base, module.module) },
  };
}
