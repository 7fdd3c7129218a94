/** TLS on the public port: certificates, SNI, client certificates, cleartext beside it. */
import { env, SERVE, type OptionSpec } from './option.js';
import type { Reader } from './read.js';
import { UsageError } from './values.js';

export const TLS_OPTIONS: readonly OptionSpec[] = [
  {
    flag: 'tls-cert',
    section: 'tls',
    value: 'path',
    env: env('tls-cert'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM certificate (chain) of the public port: it then takes TLS (REST over HTTP/1.1 and HTTP/2, gRPC by ALPN). With --tls-key; reloaded when the file changes.',
  },
  { flag: 'tls-key', section: 'tls', value: 'path', env: env('tls-key'), kind: 'string', commands: SERVE, help: 'PEM private key of --tls-cert (unencrypted).' },
  {
    flag: 'tls-dir',
    section: 'tls',
    value: 'path',
    env: env('tls-dir'),
    kind: 'string',
    commands: SERVE,
    help: "Directory of certificate pairs chosen by SNI, laid out as mounted kubernetes.io/tls Secrets: tls.crt and tls.key in it and/or in each subdirectory; names from each certificate's subjectAltName (else CN); watched for changes.",
  },
  {
    flag: 'tls-allow-cleartext',
    section: 'tls',
    env: env('tls-allow-cleartext'),
    kind: 'boolean',
    commands: SERVE,
    help: 'With TLS on, the public port also serves cleartext HTTP/1.1 and h2c, told apart per connection (else they are refused).',
  },
  {
    flag: 'tls-redirect-cleartext',
    section: 'tls',
    env: env('tls-redirect-cleartext'),
    kind: 'boolean',
    commands: SERVE,
    help: "With TLS on, answer cleartext HTTP/1.1 requests with a redirect to https:// (301 whatever the method, as Envoy's https_redirect), as Ambassador's insecure action Redirect. Cleartext gRPC is refused unless --tls-allow-cleartext.",
  },
  {
    flag: 'tls-client-ca',
    section: 'tls',
    value: 'path',
    env: env('tls-client-ca'),
    kind: 'string',
    commands: SERVE,
    help: 'PEM CA certificate(s) client certificates must chain to (mutual TLS, as a TLSContext ca_secret); refused handshakes are counted.',
  },
  {
    flag: 'tls-client-auth',
    section: 'tls',
    value: 'required|optional',
    env: env('tls-client-auth'),
    kind: 'string',
    default: 'required',
    commands: SERVE,
    help: 'With --tls-client-ca: required (every client presents a valid certificate) or optional (a client may present none; one it presents must be valid).',
  },
];

/** TLS on the public port (edge/tls.ts); absent when the port is cleartext only. */
export interface TlsConfig {
  readonly certFile: string | undefined;
  readonly keyFile: string | undefined;
  readonly dir: string | undefined;
  readonly clientCaFile: string | undefined;
  readonly clientAuth: 'optional' | 'required';
  readonly allowCleartext: boolean;
  readonly redirectCleartext: boolean;
}

/** undefined: neither --tls-cert nor --tls-dir, so the public port is cleartext only. */
export function buildTls(read: Reader): TlsConfig | undefined {
  const certFile = read.optStr('tls-cert');
  const keyFile = read.optStr('tls-key');
  const dir = read.optStr('tls-dir');
  if ((certFile === undefined) !== (keyFile === undefined)) throw new UsageError('--tls-cert and --tls-key go together: give both');
  const on = certFile !== undefined || dir !== undefined;
  const dependents = ['tls-allow-cleartext', 'tls-redirect-cleartext', 'tls-client-ca', 'tls-client-auth'].filter((flag) => read.given(flag));
  if (!on) {
    if (dependents.length > 0) throw new UsageError(`--${dependents[0]} needs TLS: give --tls-cert and --tls-key, or --tls-dir`);
    return undefined;
  }
  const clientCaFile = read.optStr('tls-client-ca');
  const clientAuth = read.choice('tls-client-auth', ['optional', 'required']);
  if (clientCaFile === undefined && read.given('tls-client-auth')) throw new UsageError('--tls-client-auth needs --tls-client-ca (the CA client certificates are checked against)');
  return { certFile, keyFile, dir, clientCaFile, clientAuth, allowCleartext: read.bool('tls-allow-cleartext'), redirectCleartext: read.bool('tls-redirect-cleartext') };
}
