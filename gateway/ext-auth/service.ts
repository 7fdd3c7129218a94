/**
 * The external auth service of --ext-auth-service, built once per data plane: the protocol's
 * client (HTTP or Envoy gRPC), dialled where --resolve says, with TLS as --ext-auth-tls-verify,
 * --ext-auth-ca and --ext-auth-cert/--ext-auth-key say, under the policy of policy.ts.
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ExtAuthConfig } from '../config/ext-auth.js';
import type { UpstreamConfig } from '../config/upstream.js';
import type { GatewayMetrics } from '../observe/metrics.js';
import { ExternalAuth } from './policy.js';
import { HttpAuthClient, tlsOptions } from './http-client.js';
import { GrpcAuthClient } from './grpc-client.js';

export function externalAuth(
  config: ExtAuthConfig,
  upstream: Pick<UpstreamConfig, 'resolve' | 'connectTimeoutMs'>,
  metrics: GatewayMetrics,
  log: Logger | undefined,
  internalDetail: boolean,
): ExternalAuth {
  const ca = config.caFile ? readFileSync(config.caFile) : undefined;
  const identity = config.certFile && config.keyFile ? { cert: readFileSync(config.certFile), key: readFileSync(config.keyFile) } : undefined;
  const connectTimeoutMs = Math.min(upstream.connectTimeoutMs, config.timeoutMs);
  const client =
    config.proto === 'grpc'
      ? new GrpcAuthClient(config, { resolve: upstream.resolve, connectTimeoutMs, ca, identity })
      : new HttpAuthClient(
          config,
          {
            ...(upstream.resolve.get(`${config.host}:${config.port}`) ?? { host: config.host, port: config.port }),
            tls: config.tls ? tlsOptions(config.host, config.tlsVerify, ca, identity) : undefined,
          },
          connectTimeoutMs,
        );
  return new ExternalAuth({ config, client, metrics, log, internalDetail });
}
