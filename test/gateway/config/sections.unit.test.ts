/**
 * Each section of the command line on its own (gateway/config/<section>.ts): its builder over a
 * Reader of argv and environment, without starting anything. parseConfig only puts the parts together.
 */
import { describe, expect, it } from 'vitest';
import { buildAdmin } from '../../../gateway/config/admin.js';
import { buildAuth } from '../../../gateway/config/auth.js';
import { buildEdge } from '../../../gateway/config/edge.js';
import { buildExtAuth, buildExtAuthDefault } from '../../../gateway/config/ext-auth.js';
import { buildListen } from '../../../gateway/config/listen.js';
import { buildObserve } from '../../../gateway/config/observe.js';
import type { Command } from '../../../gateway/config/option.js';
import { OPTIONS } from '../../../gateway/config/options.js';
import { parseConfig } from '../../../gateway/config/parse.js';
import { buildProcess } from '../../../gateway/config/process.js';
import { createReader, type Reader } from '../../../gateway/config/read.js';
import { buildRouteDefaults } from '../../../gateway/config/route-defaults.js';
import { buildShadow, buildShadowCompare } from '../../../gateway/config/shadows.js';
import { buildSource } from '../../../gateway/config/source.js';
import { buildTls } from '../../../gateway/config/tls.js';
import { buildUpstream } from '../../../gateway/config/upstream.js';
import { refusal } from './refusal.js';

const read = (argv: string[] = [], environment: NodeJS.ProcessEnv = {}, command: Command = 'serve'): Reader => createReader(command, argv, environment, OPTIONS);

describe('the reader', () => {
  it('a flag wins over its variable, the variable over the default', () => {
    expect(read().port('port')).toBe(8080);
    expect(read([], { SELDON_GATEWAY_PORT: '9000' }).port('port')).toBe(9000);
    expect(read(['--port', '9001'], { SELDON_GATEWAY_PORT: '9000' }).port('port')).toBe(9001);
    expect(read([], { SELDON_GATEWAY_PORT: '' }).port('port')).toBe(8080);
  });

  it('lists: repeated flags, or the variable split at commas, blanks dropped', () => {
    expect(read(['--shadow-compare-ignore', 'a', '--shadow-compare-ignore', ' b ']).list('shadow-compare-ignore')).toEqual(['a', 'b']);
    expect(read([], { SELDON_GATEWAY_SHADOW_COMPARE_IGNORE: 'a, ,b' }).list('shadow-compare-ignore')).toEqual(['a', 'b']);
    expect(read().list('shadow-compare-ignore')).toEqual(['meta']);
  });

  it("another command's option keeps its default and is never given", () => {
    const r = read([], { SELDON_GATEWAY_PORT: '9000', SELDON_GATEWAY_TLS_ALLOW_CLEARTEXT: 'true' }, 'routes');
    expect(r.port('port')).toBe(8080);
    expect(r.given('tls-allow-cleartext')).toBe(false);
    expect(read([], { SELDON_GATEWAY_TLS_ALLOW_CLEARTEXT: 'true' }).given('tls-allow-cleartext')).toBe(true);
  });

  it('a boolean from the environment that is not one names the variable', () => {
    expect(refusal(() => read([], { SELDON_GATEWAY_PREDICTOR_HEADER: 'maybe' }).bool('predictor-header'))).toBe('SELDON_GATEWAY_PREDICTOR_HEADER: "maybe" is not true or false');
  });

  it('mistyped, foreign and valueless options are usage errors in the gateway words', () => {
    expect(refusal(() => read(['--prot', '1']))).toBe("Unknown option '--prot'. Did you mean '--port'?");
    expect(refusal(() => read(['--port', '1'], {}, 'routes'))).toBe("Option '--port' is an option of serve, not of routes");
    expect(refusal(() => read(['--grace-period']))).toBe("Option '--grace-period <duration>' needs a value");
    expect(refusal(() => read(['positional']))).toMatch(/positional/);
  });
});

describe('listen and admin', () => {
  it('ports up to 65535, the optional ones unset by default', () => {
    expect(buildListen(read())).toEqual({ port: 8080, host: '0.0.0.0', grpcPort: undefined, oauthPort: undefined });
    expect(buildListen(read(['--grpc-port', '0', '--oauth-port', '8003']))).toMatchObject({ grpcPort: 0, oauthPort: 8003 });
    expect(refusal(() => buildListen(read(['--oauth-port', '70000'])))).toBe('--oauth-port: 70000 is not a port (0..65535)');
  });

  it('the admin port binds to loopback, or to every address inside a cluster, unless told', () => {
    expect(buildAdmin(read())).toEqual({ adminPort: 8877, adminHost: '127.0.0.1', adminTokenFile: undefined, adminPageSampleMs: 10_000 });
    expect(buildAdmin(read([], { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).adminHost).toBe('0.0.0.0');
    expect(buildAdmin(read(['--admin-host', '::1'], { KUBERNETES_SERVICE_HOST: '10.0.0.1' })).adminHost).toBe('::1');
    expect(refusal(() => buildAdmin(read(['--admin-page-sample', '5'])))).toMatch(/^--admin-page-sample: "5" has no unit/);
  });
});

describe('edge', () => {
  it('defaults', () => {
    expect(buildEdge(read())).toEqual({
      trustedProxies: [],
      trustForwardedHeaders: false,
      maxBodyBytes: 100 * 1024 ** 2,
      maxHeaderBytes: 60 * 1024,
      maxHeadersCount: 100,
      clientHeaderTimeoutMs: 60_000,
      clientRequestTimeoutMs: 300_000,
      maxConnections: 10_000,
      errorDetail: 'public',
      http1Server: 'gateway',
      lingering: { enabled: true, timeMs: 30_000, timeoutMs: 5_000, maxBytes: 100 * 1024 ** 2 },
    });
  });

  it('trusted proxies: repeated or comma-separated, each checked', () => {
    expect(buildEdge(read(['--trusted-proxies', '10.0.0.0/8,fd00::/8', '--trusted-proxies', '1.2.3.4'])).trustedProxies).toEqual(['10.0.0.0/8', 'fd00::/8', '1.2.3.4']);
    expect(buildEdge(read([], { SELDON_GATEWAY_TRUSTED_PROXIES: '10.0.0.0/8, 1.2.3.4' })).trustedProxies).toEqual(['10.0.0.0/8', '1.2.3.4']);
    expect(refusal(() => buildEdge(read(['--trusted-proxies', 'proxy.local'])))).toMatch(/^--trusted-proxies: "proxy.local"/);
  });

  it('client timeouts: a header timeout, and a request timeout of 0 or at least it', () => {
    expect(refusal(() => buildEdge(read(['--client-header-timeout', '0'])))).toBe('--client-header-timeout: must be more than 0');
    expect(refusal(() => buildEdge(read(['--client-request-timeout', '1s'])))).toBe('--client-request-timeout: must be 0 or at least --client-header-timeout');
    expect(buildEdge(read(['--client-request-timeout', '0'])).clientRequestTimeoutMs).toBe(0);
  });

  it('lingering close: on or off, its budgets above 0 while on', () => {
    expect(refusal(() => buildEdge(read(['--lingering-close', 'always'])))).toBe('--lingering-close: "always" is not on or off');
    expect(refusal(() => buildEdge(read(['--lingering-timeout', '0'])))).toBe('--lingering-timeout: must be more than 0 (--lingering-close off closes at once)');
    expect(buildEdge(read(['--lingering-close', 'OFF', '--lingering-time', '0'])).lingering).toMatchObject({ enabled: false, timeMs: 0 });
  });

  it('choices: error detail and the HTTP/1.1 server', () => {
    expect(buildEdge(read(['--error-detail', 'internal', '--http1-server', 'node']))).toMatchObject({ errorDetail: 'internal', http1Server: 'node' });
    expect(refusal(() => buildEdge(read(['--http1-server', 'nginx'])))).toBe('--http1-server: "nginx" is not gateway or node');
    expect(buildEdge(read(['--max-headers-count', '0'])).maxHeadersCount).toBe(1);
  });
});

describe('source', () => {
  it('one source at a time; endpoint routing auto or off', () => {
    expect(refusal(() => buildSource(read(['-f', 'x', '--kubernetes'])))).toBe('--manifests and --kubernetes are two different sources: pass one');
    expect(buildSource(read(['-f', 'dir'])).source).toEqual({ manifests: 'dir', kubernetes: false, kubeconfig: undefined, watchNamespace: undefined, endpointRouting: true });
    expect(buildSource(read(['--endpoint-routing', 'OFF'])).source.endpointRouting).toBe(false);
    expect(refusal(() => buildSource(read(['--endpoint-routing', 'sometimes'])))).toBe('--endpoint-routing: "sometimes" is not auto or off');
    expect(buildSource(read([], { KUBECONFIG: '/a:/b' })).source.kubeconfig).toBe('/a:/b');
  });

  it('the namespace: a flag narrows the watch; AMBASSADOR_NAMESPACE only with single-namespace mode', () => {
    expect(buildSource(read(['--namespace', 'ns'])).source.watchNamespace).toBe('ns');
    expect(buildSource(read([], { AMBASSADOR_NAMESPACE: 'ns' })).source.watchNamespace).toBeUndefined();
    const single = buildSource(read([], { AMBASSADOR_NAMESPACE: 'ns', AMBASSADOR_SINGLE_NAMESPACE: 'true' }));
    expect(single.source.watchNamespace).toBe('ns');
    expect(single.served).toMatchObject({ singleNamespace: true, namespace: 'ns' });
  });

  it('which deployments are served: the id, custom config and its scope, the regex limit', () => {
    expect(buildSource(read()).served).toEqual({ ambassadorId: 'default', singleNamespace: false, namespace: 'default', honourCustomConfig: true, customConfigScope: 'namespace', regexMaxSize: 200 });
    expect(buildSource(read(['--ambassador-id', ''], { AMBASSADOR_ID: '' })).served.ambassadorId).toBe('default');
    expect(buildSource(read(['--no-custom-config', '--custom-config-scope', 'Cluster'], { AMBASSADOR_ID: 'blue' }, 'routes')).served).toMatchObject({
      ambassadorId: 'blue',
      honourCustomConfig: false,
      customConfigScope: 'cluster',
    });
    expect(refusal(() => buildSource(read(['--custom-config-scope', 'world'])))).toBe('--custom-config-scope: "world" is not namespace or cluster');
    expect(refusal(() => buildSource(read(['--regex-max-size', '0'])))).toBe('--regex-max-size: 0 is not a positive whole number');
  });
});

describe('tls', () => {
  it('off without a certificate; its other flags then ask for one', () => {
    expect(buildTls(read())).toBeUndefined();
    expect(refusal(() => buildTls(read(['--tls-redirect-cleartext'])))).toBe('--tls-redirect-cleartext needs TLS: give --tls-cert and --tls-key, or --tls-dir');
    expect(refusal(() => buildTls(read(['--tls-cert', 'c'])))).toBe('--tls-cert and --tls-key go together: give both');
  });

  it('a pair or a directory; client certificates required unless optional', () => {
    expect(buildTls(read(['--tls-cert', 'c', '--tls-key', 'k']))).toEqual({
      certFile: 'c',
      keyFile: 'k',
      dir: undefined,
      clientCaFile: undefined,
      clientAuth: 'required',
      allowCleartext: false,
      redirectCleartext: false,
    });
    expect(buildTls(read(['--tls-dir', 'd', '--tls-client-ca', 'ca', '--tls-client-auth', 'optional', '--tls-allow-cleartext']))).toMatchObject({
      dir: 'd',
      clientCaFile: 'ca',
      clientAuth: 'optional',
      allowCleartext: true,
    });
    expect(refusal(() => buildTls(read(['--tls-dir', 'd', '--tls-client-auth', 'optional'])))).toBe('--tls-client-auth needs --tls-client-ca (the CA client certificates are checked against)');
    expect(refusal(() => buildTls(read(['--tls-dir', 'd', '--tls-client-ca', 'ca', '--tls-client-auth', 'maybe'])))).toBe('--tls-client-auth: "maybe" is not optional or required');
  });
});

describe('upstream and route defaults', () => {
  it('upstream: resolve entries, a CA that implies verification, the pick', () => {
    const u = buildUpstream(read(['--resolve', 'a.b:80=127.0.0.1:9', '--upstream-ca', 'ca.pem', '--balance', 'round-robin', '--random-seed', '7']));
    expect([...u.resolve]).toEqual([['a.b:80', { host: '127.0.0.1', port: 9 }]]);
    expect(u).toMatchObject({ tlsVerify: true, caFile: 'ca.pem', balance: 'round-robin', randomSeed: 7, connectTimeoutMs: 3000, retryBufferBytes: 1024 ** 2, maxResponseHeaderBytes: 60 * 1024 });
    expect([...buildUpstream(read([], { SELDON_GATEWAY_RESOLVE: 'a.b:1=h:2, c.d:3=h:4' })).resolve.keys()]).toEqual(['a.b:1', 'c.d:3']);
    expect(refusal(() => buildUpstream(read(['--balance', 'least-request'])))).toBe('--balance: "least-request" is not random or round-robin');
  });

  it('route defaults: durations with their unit, the executor ports', () => {
    expect(buildRouteDefaults(read([], {}, 'routes'))).toEqual({ defaultTimeoutMs: 3000, defaultIdleTimeoutMs: 300_000, defaultHttpPort: 8000, defaultGrpcPort: 5001, legacyServiceNaming: false });
    expect(buildRouteDefaults(read(['--default-timeout', '2.5s', '--default-idle-timeout', '1m']))).toMatchObject({ defaultTimeoutMs: 2500, defaultIdleTimeoutMs: 60_000 });
    expect(refusal(() => buildRouteDefaults(read(['--default-timeout', '3'])))).toBe('--default-timeout: "3" has no unit: durations take ms, s, m, h or d (3ms, 3s)');
    expect(refusal(() => buildRouteDefaults(read([], { SELDON_GATEWAY_DEFAULT_IDLE_TIMEOUT: '300000' })))).toMatch(/^--default-idle-timeout: "300000" has no unit/);
  });
});

describe('shadows, auth, observe, process', () => {
  it('shadows: a cap of 0 is none; comparison tolerance is not negative', () => {
    expect(buildShadow(read())).toEqual({ maxInFlight: undefined, maxBodyBytes: 4 * 1024 ** 2 });
    expect(buildShadow(read(['--shadow-max-in-flight', '0'])).maxInFlight).toBeUndefined();
    expect(buildShadow(read(['--shadow-max-in-flight', '5'])).maxInFlight).toBe(5);
    expect(buildShadowCompare(read(['--shadow-compare', '--shadow-compare-ignore', '']))).toEqual({ enabled: true, tolerance: 1e-6, ignore: [], maxBodyBytes: 256 * 1024 });
    expect(refusal(() => buildShadowCompare(read(['--shadow-compare-tolerance=-1'])))).toBe('--shadow-compare-tolerance: -1 is negative');
  });

  it('auth: Redis from REDIS_URL, a token lifetime of at least 1s', () => {
    expect(buildAuth(read([], { REDIS_URL: 'redis://r:6379/0' }))).toEqual({ redisUrl: 'redis://r:6379/0', steeringKeyFile: undefined, redisTimeoutMs: 100, oauthTokenTtlMs: 43_200_000 });
    expect(refusal(() => buildAuth(read(['--oauth-token-ttl', '500ms'])))).toBe('--oauth-token-ttl: must be at least 1s');
  });

  it('observe: access log and trace sampling fractions, an http(s) collector, the grace of series of what is gone', () => {
    expect(buildObserve(read())).toEqual({
      predictorHeader: false,
      accessLog: { enabled: true, format: 'json', sample: 1, query: false, bufferBytes: 16 * 1024 ** 2 },
      seriesGraceMs: 60_000,
      tracing: { endpoint: undefined, sample: 1 },
    });
    expect(buildObserve(read(['--series-grace', '2m'])).seriesGraceMs).toBe(120_000);
    expect(refusal(() => buildObserve(read(['--series-grace', '30'])))).toMatch(/^--series-grace: "30" has no unit/);
    expect(buildObserve(read(['--access-log', 'off', '--access-log-format', 'TEXT', '--otlp-endpoint', ' http://otel:4318 '])).accessLog).toMatchObject({ enabled: false, format: 'text' });
    expect(buildObserve(read(['--otlp-endpoint', 'http://otel:4318'])).tracing.endpoint).toBe('http://otel:4318');
    expect(refusal(() => buildObserve(read(['--otlp-endpoint', 'otel:4318'])))).toBe('--otlp-endpoint: "otel:4318" is not an http:// or https:// URL');
    expect(refusal(() => buildObserve(read(['--access-log-sample', '2'])))).toBe('--access-log-sample: 2 is not between 0 and 1');
    expect(refusal(() => buildObserve(read(['--access-log', 'sometimes'])))).toBe('--access-log: "sometimes" is not true or false');
  });

  it("process: at least one worker, durations with their unit, pino's levels only", () => {
    expect(buildProcess(read(['--workers', '0']))).toMatchObject({ workers: 1, maxSemiSpaceMb: 16, gracePeriodMs: 10_000, logLevel: 'info' });
    expect(buildProcess(read(['--log-level', 'WARN'])).logLevel).toBe('warn');
    expect(refusal(() => buildProcess(read(['--log-level', 'verbose'])))).toBe('--log-level: "verbose" is not fatal, error, warn, info, debug or trace');
    expect(refusal(() => buildProcess(read([], { SELDON_GATEWAY_LOG_LEVEL: 'silly' })))).toBe('--log-level: "silly" is not fatal, error, warn, info, debug or trace');
    expect(refusal(() => buildProcess(read(['--grace-period', '10'])))).toMatch(/^--grace-period: "10" has no unit/);
  });
});

describe('external auth', () => {
  it('off without a service; the default check needs one', () => {
    expect(buildExtAuth(read())).toBeUndefined();
    expect(buildExtAuthDefault(read())).toBe(false);
    expect(buildExtAuthDefault(read(['--ext-auth-service', 'auth:3000'], {}, 'routes'))).toBe(true);
    expect(buildExtAuthDefault(read(['--ext-auth-service', 'auth:3000', '--ext-auth-default', 'off'], {}, 'routes'))).toBe(false);
  });

  it('the address: a scheme picks protocol and TLS, else --ext-auth-proto; the port defaults by TLS', () => {
    expect(buildExtAuth(read(['--ext-auth-service', 'auth:3000']))).toMatchObject({ proto: 'http', tls: false, host: 'auth', port: 3000, address: 'auth:3000' });
    expect(buildExtAuth(read(['--ext-auth-service', 'auth:9001', '--ext-auth-proto', 'GRPC']))).toMatchObject({ proto: 'grpc', tls: false });
    expect(buildExtAuth(read(['--ext-auth-service', 'grpcs://[::1]']))).toMatchObject({ proto: 'grpc', tls: true, host: '::1', port: 443, address: '[::1]:443' });
    expect(buildExtAuth(read(['--ext-auth-service', 'http://a']))).toMatchObject({ port: 80 });
    expect(refusal(() => buildExtAuth(read(['--ext-auth-service', 'ftp://a:1'])))).toBe('--ext-auth-service: "ftp://a:1" is not [http|https|grpc|grpcs://]host:port');
    expect(refusal(() => buildExtAuth(read(['--ext-auth-service', 'a:0'])))).toBe('--ext-auth-service: 0 is not a port');
    expect(refusal(() => buildExtAuth(read(['--ext-auth-service', 'a:1', '--ext-auth-proto', 'tcp'])))).toBe('--ext-auth-proto: "tcp" is not http or grpc');
  });

  it('headers, body, limits and the client certificate', () => {
    const c = buildExtAuth(
      read([
        '--ext-auth-service',
        'https://auth:8443',
        '--ext-auth-path-prefix',
        '/extauth/',
        '--ext-auth-allowed-request-headers',
        'X-Tenant',
        '--ext-auth-allowed-request-headers',
        'Cookie',
        '--ext-auth-add-header',
        'x-from: gateway',
        '--ext-auth-include-body',
        '1KiB',
        '--ext-auth-allow-partial',
        '--ext-auth-cert',
        'c.pem',
        '--ext-auth-key',
        'k.pem',
        '--ext-auth-tls-verify',
        'off',
      ]),
    )!;
    expect(c).toMatchObject({
      pathPrefix: '/extauth',
      timeoutMs: 5000,
      allowedRequestHeaders: ['x-tenant'],
      addHeaders: ['x-from', 'gateway'],
      includeBody: { maxBytes: 1024, allowPartial: true },
      statusOnError: 403,
      tlsVerify: false,
      certFile: 'c.pem',
      keyFile: 'k.pem',
      maxConnections: 1024,
      maxRequests: 1024,
    });
    expect(buildExtAuth(read(['--ext-auth-service', 'a:1']))!.includeBody).toBeUndefined();
    const bad = (...args: string[]) => refusal(() => buildExtAuth(read(['--ext-auth-service', 'a:1', ...args])));
    expect(bad('--ext-auth-path-prefix', 'extauth')).toBe('--ext-auth-path-prefix: "extauth" is not a path like /extauth');
    expect(bad('--ext-auth-status-on-error', '42')).toBe('--ext-auth-status-on-error: 42 is not an HTTP status');
    expect(bad('--ext-auth-allowed-request-headers', 'x y')).toBe('--ext-auth-allowed-request-headers: "x y" is not a header name');
    expect(bad('--ext-auth-add-header', 'novalue')).toBe('--ext-auth-add-header: "novalue" is not name:value');
    expect(bad('--ext-auth-max-requests', '0')).toBe('--ext-auth-max-connections and --ext-auth-max-requests: must be at least 1');
    expect(bad('--ext-auth-cert', 'c.pem')).toBe('--ext-auth-cert and --ext-auth-key go together: give both');
    expect(bad('--ext-auth-cert', 'c.pem', '--ext-auth-key', 'k.pem')).toBe('--ext-auth-cert: the auth service "a:1" is not https:// or grpcs://, so no certificate would be presented');
  });
});

describe('parseConfig', () => {
  it('puts the sections together; only serve builds the external auth client', () => {
    const serve = parseConfig('serve', ['--ext-auth-service', 'auth:3000', '--grpc-port', '0'], {});
    expect(serve.extAuth?.address).toBe('auth:3000');
    expect(serve.listen).toMatchObject({ port: 8080, grpcPort: 0, adminPort: 8877 });
    expect(serve.compile).toMatchObject({ extAuthDefault: true, defaultTimeoutMs: 3000, ambassadorId: 'default' });
    const routes = parseConfig('routes', ['-f', 'x', '--ext-auth-service', 'auth:3000', '--json'], {});
    expect(routes.extAuth).toBeUndefined();
    expect(routes).toMatchObject({ json: true, help: false, compile: { extAuthDefault: true } });
  });
});
