/** External auth: the auth service every prediction is checked by (Ambassador's AuthService). */
import { BOTH, env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { HEADER_NAME, parseBool, UsageError } from './values.js';
import { validPort } from '../../routing/values/port.js';

export const EXT_AUTH_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'ext-auth-service',
    section: 'extauth',
    value: '[scheme://]host:port',
    env: env('ext-auth-service'),
    kind: 'string',
    commands: BOTH,
    help: "The external auth service every prediction is checked by before it reaches a model (AuthService auth_service): http://host:port or https://host:port (HTTP), grpc://host:port or grpcs://host:port (Envoy's envoy.service.auth.v3.Authorization/Check, as OPA-Envoy and Authorino serve it), or host:port with --ext-auth-proto. A cluster Service name is dialled through --resolve like any upstream. Unset: no external auth (routes that require it are refused with --ext-auth-status-on-error).",
  },
  {
    flag: 'ext-auth-proto',
    section: 'extauth',
    value: 'http|grpc',
    env: env('ext-auth-proto'),
    kind: 'string',
    default: 'http',
    commands: SERVE,
    help: 'The protocol of --ext-auth-service when its address names no scheme (AuthService proto).',
  },
  {
    flag: 'ext-auth-default',
    section: 'extauth',
    value: 'on|off',
    env: env('ext-auth-default'),
    kind: 'string',
    default: 'on',
    commands: BOTH,
    help: "on: every route is checked, as an AuthService checks every Mapping (a custom Mapping's bypass_auth: true opts out, for its own deployment's Services); off: only SeldonDeployments annotated seldon.io/gateway-auth: external.",
  },
  {
    flag: 'ext-auth-path-prefix',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-path-prefix'),
    kind: 'string',
    default: '',
    commands: SERVE,
    help: "HTTP: prepended to the request's path in the check request (AuthService path_prefix), e.g. /extauth.",
  },
  {
    flag: 'ext-auth-timeout',
    section: 'extauth',
    env: env('ext-auth-timeout'),
    kind: 'duration',
    default: '5000ms',
    commands: SERVE,
    help: 'How long a check may take (AuthService timeout_ms); then the request fails with --ext-auth-status-on-error (or passes, with --ext-auth-failure-mode-allow).',
  },
  {
    flag: 'ext-auth-allowed-request-headers',
    section: 'extauth',
    value: 'name',
    env: env('ext-auth-allowed-request-headers'),
    kind: 'list',
    commands: SERVE,
    help: 'Client request headers sent to the auth service besides those always sent (Authorization, Cookie, From, Proxy-Authorization, User-Agent, X-Forwarded-For, X-Forwarded-Host, X-Forwarded-Proto, and Host, Content-Length); AuthService allowed_request_headers. gRPC checks carry every header, as Envoy sends them. Repeatable; env: comma-separated.',
  },
  {
    flag: 'ext-auth-allowed-authorization-headers',
    section: 'extauth',
    value: 'name',
    env: env('ext-auth-allowed-authorization-headers'),
    kind: 'list',
    commands: SERVE,
    help: "HTTP: headers of the auth service's answer added to an allowed request (replacing the client's) and returned to the client with a denial, besides those always taken (Authorization, Location, Proxy-Authenticate, Set-Cookie, WWW-Authenticate); AuthService allowed_authorization_headers. Repeatable; env: comma-separated.",
  },
  {
    flag: 'ext-auth-add-header',
    section: 'extauth',
    value: 'name:value',
    env: env('ext-auth-add-header'),
    kind: 'list',
    commands: SERVE,
    help: 'A header added to every check request (AuthService add_auth_headers). Repeatable; env: comma-separated.',
  },
  {
    flag: 'ext-auth-include-body',
    section: 'extauth',
    value: 'max_bytes',
    env: env('ext-auth-include-body'),
    kind: 'bytes',
    commands: SERVE,
    help: 'Send up to this many bytes of the request body with the check (AuthService include_body.max_bytes); a larger body is refused with 413 unless --ext-auth-allow-partial. Unset: no body is sent, or read, before the check.',
  },
  {
    flag: 'ext-auth-allow-partial',
    section: 'extauth',
    env: env('ext-auth-allow-partial'),
    kind: 'boolean',
    commands: SERVE,
    help: 'With --ext-auth-include-body: a larger body is checked by its first max_bytes (AuthService include_body.allow_partial; the check says x-envoy-auth-partial-body: true).',
  },
  {
    flag: 'ext-auth-status-on-error',
    section: 'extauth',
    value: 'code',
    env: env('ext-auth-status-on-error'),
    kind: 'int',
    default: '403',
    commands: SERVE,
    help: "The HTTP status of a request whose check failed: the auth service down, slow, overloaded or answering what is not HTTP / a CheckResponse (AuthService status_on_error.code); gRPC calls get the status's gRPC code.",
  },
  {
    flag: 'ext-auth-failure-mode-allow',
    section: 'extauth',
    env: env('ext-auth-failure-mode-allow'),
    kind: 'boolean',
    commands: SERVE,
    help: 'Let requests through when their check failed (AuthService failure_mode_allow); counted as result="error_allowed".',
  },
  {
    flag: 'ext-auth-tls-verify',
    section: 'extauth',
    value: 'on|off',
    env: env('ext-auth-tls-verify'),
    kind: 'string',
    default: 'on',
    commands: SERVE,
    help: "With an https:// or grpcs:// auth service: verify its certificate (against --ext-auth-ca, else the system's CAs) and name (the address's host).",
  },
  {
    flag: 'ext-auth-ca',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-ca'),
    kind: 'string',
    commands: SERVE,
    help: "PEM CA certificate(s) the auth service's TLS certificate must chain to (AuthService tls, as a TLSContext ca_secret).",
  },
  {
    flag: 'ext-auth-cert',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-cert'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM client certificate (chain) the gateway presents to an https:// or grpcs:// auth service that asks for one (a TLSContext cert_chain_file); with --ext-auth-key.',
  },
  {
    flag: 'ext-auth-key',
    section: 'extauth',
    value: 'path',
    env: env('ext-auth-key'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM private key of --ext-auth-cert (a TLSContext private_key_file).',
  },
  {
    flag: 'ext-auth-max-connections',
    section: 'extauth',
    env: env('ext-auth-max-connections'),
    kind: 'int',
    default: '1024',
    commands: SERVE,
    help: 'Connections to the auth service per process, at most (AuthService circuit_breakers max_connections; gRPC: sessions are at most 4).',
  },
  {
    flag: 'ext-auth-max-requests',
    section: 'extauth',
    env: env('ext-auth-max-requests'),
    kind: 'int',
    default: '1024',
    commands: SERVE,
    help: 'Checks in flight per process, at most (AuthService circuit_breakers max_requests; queued ones count as well, up to max_pending_requests, the same number); more fail at once as an error (result="overflow").',
  },
];

/** The external auth service (gateway/ext-auth/policy.ts); absent when --ext-auth-service is unset. */
export interface ExtAuthConfig {
  readonly proto: 'http' | 'grpc';
  readonly tls: boolean;
  readonly host: string;
  readonly port: number;
  /** `host:port` as given, for messages and the log. */
  readonly address: string;
  readonly pathPrefix: string;
  readonly timeoutMs: number;
  /** Lower-case names, beside the ones always sent. */
  readonly allowedRequestHeaders: readonly string[];
  /** Lower-case names, beside the ones always taken. */
  readonly allowedAuthorizationHeaders: readonly string[];
  /** `name, value` pairs. */
  readonly addHeaders: readonly string[];
  /** include_body: undefined when no body is sent. */
  readonly includeBody: { readonly maxBytes: number; readonly allowPartial: boolean } | undefined;
  readonly statusOnError: number;
  readonly failureModeAllow: boolean;
  readonly tlsVerify: boolean;
  /** --ext-auth-ca: the PEM file's path (the data plane reads it once). */
  readonly caFile: string | undefined;
  /** --ext-auth-cert and --ext-auth-key: the client certificate presented to the auth service, both or neither. */
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly maxConnections: number;
  readonly maxRequests: number;
}

/** Headers always sent to an HTTP auth service (Ambassador's list), beside Host and Content-Length. */
const ALWAYS_REQUEST_HEADERS = ['authorization', 'cookie', 'from', 'proxy-authorization', 'user-agent', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto'];

const SCHEMES: Record<string, { proto: 'http' | 'grpc'; tls: boolean }> = {
  http: { proto: 'http', tls: false },
  https: { proto: 'http', tls: true },
  grpc: { proto: 'grpc', tls: false },
  grpcs: { proto: 'grpc', tls: true },
};

/** --ext-auth-default on with a service set: every route is checked (routing's CompileOptions.extAuthDefault). */
export function buildExtAuthDefault(read: Reader): boolean {
  const on = parseBool('--ext-auth-default', read.str('ext-auth-default'));
  return on && (read.optStr('ext-auth-service')?.trim() ?? '') !== '';
}

/** The --ext-auth-* flags, when --ext-auth-service is set. */
export function buildExtAuth(read: Reader): ExtAuthConfig | undefined {
  const raw = read.optStr('ext-auth-service')?.trim();
  if (!raw) return undefined;
  const given = read.choice('ext-auth-proto', ['http', 'grpc']);
  const m = /^(?:([a-z]+):\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+)(?::([0-9]{1,5}))?\/?$/.exec(raw);
  const scheme = m?.[1]?.toLowerCase();
  const known = scheme === undefined ? { proto: given, tls: false } : SCHEMES[scheme];
  if (!m || known === undefined) throw new UsageError(`--ext-auth-service: "${raw}" is not [http|https|grpc|grpcs://]host:port`);
  const host = m[2]!.replace(/^\[|\]$/g, '');
  const port = m[3] !== undefined ? validPort(m[3]) : known.tls ? 443 : 80;
  if (port === null) throw new UsageError(`--ext-auth-service: ${m[3]} is not a port`);
  const pathPrefix = read.str('ext-auth-path-prefix').trim();
  if (pathPrefix !== '' && (!pathPrefix.startsWith('/') || /[\s?#]/.test(pathPrefix))) throw new UsageError(`--ext-auth-path-prefix: "${pathPrefix}" is not a path like /extauth`);
  const statusOnError = read.int('ext-auth-status-on-error');
  if (statusOnError < 100 || statusOnError > 599) throw new UsageError(`--ext-auth-status-on-error: ${statusOnError} is not an HTTP status`);
  const names = (flag: string): string[] => {
    const out = read.list(flag).map((n) => n.toLowerCase());
    for (const n of out) if (!HEADER_NAME.test(n)) throw new UsageError(`--${flag}: "${n}" is not a header name`);
    return out;
  };
  const addHeaders: string[] = [];
  for (const entry of read.list('ext-auth-add-header')) {
    const i = entry.indexOf(':');
    const name = i > 0 ? entry.slice(0, i).trim().toLowerCase() : '';
    if (!HEADER_NAME.test(name)) throw new UsageError(`--ext-auth-add-header: "${entry}" is not name:value`);
    addHeaders.push(name, entry.slice(i + 1).trim());
  }
  const includeBodyBytes = read.optBytes('ext-auth-include-body');
  const maxConnections = read.int('ext-auth-max-connections');
  const maxRequests = read.int('ext-auth-max-requests');
  if (maxConnections < 1 || maxRequests < 1) throw new UsageError('--ext-auth-max-connections and --ext-auth-max-requests: must be at least 1');
  const tlsVerify = parseBool('--ext-auth-tls-verify', read.str('ext-auth-tls-verify'));
  const certFile = read.optStr('ext-auth-cert');
  const keyFile = read.optStr('ext-auth-key');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--ext-auth-cert and --ext-auth-key go together: give both');
  if (certFile !== undefined && !known.tls) throw new UsageError(`--ext-auth-cert: the auth service "${raw}" is not https:// or grpcs://, so no certificate would be presented`);
  return {
    proto: known.proto,
    tls: known.tls,
    host,
    port,
    address: `${m[2]}:${port}`,
    pathPrefix: pathPrefix.replace(/\/$/, ''),
    timeoutMs: Math.max(1, read.duration('ext-auth-timeout')),
    allowedRequestHeaders: names('ext-auth-allowed-request-headers').filter((n) => !ALWAYS_REQUEST_HEADERS.includes(n)),
    allowedAuthorizationHeaders: names('ext-auth-allowed-authorization-headers'),
    addHeaders,
    includeBody: includeBodyBytes === undefined ? undefined : { maxBytes: includeBodyBytes, allowPartial: read.bool('ext-auth-allow-partial') },
    statusOnError,
    failureModeAllow: read.bool('ext-auth-failure-mode-allow'),
    tlsVerify,
    caFile: read.optStr('ext-auth-ca'),
    certFile,
    keyFile,
    maxConnections,
    maxRequests,
  };
}
