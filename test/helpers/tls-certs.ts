/**
 * Test certificates made with the `openssl` CLI (node:crypto cannot issue X.509): a CA, and
 * server or client certificates it signs, each with a chosen serial so a test can tell which
 * certificate a handshake got. Written to a temp dir the caller removes; never committed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pem {
  readonly cert: string;
  readonly key: string;
  /** The serial as Node's X509Certificate prints it (upper-case hex). */
  readonly serial: string;
}

export interface Ca extends Pem {
  /** Issue a certificate signed by this CA. */
  issue(options: IssueOptions): Pem;
}

export interface IssueOptions {
  readonly cn: string;
  /** DNS names (and `IP:` entries) of the subjectAltName; none: CN only. */
  readonly san?: readonly string[];
  readonly serial: number;
  /** serverAuth (default) or clientAuth. */
  readonly usage?: 'server' | 'client';
  readonly days?: number;
}

let counter = 0;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A new CA (P-256) in `dir`. */
export function makeCa(dir: string, name = 'Test CA'): Ca {
  const id = `ca${counter++}`;
  const key = join(dir, `${id}.key`);
  const cert = join(dir, `${id}.crt`);
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${name}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
    '-set_serial',
    '1',
  ]);
  const ca: Pem = { cert: readFileSync(cert, 'utf8'), key: readFileSync(key, 'utf8'), serial: '01' };
  return {
    ...ca,
    issue(o) {
      const n = `leaf${counter++}`;
      const leafKey = join(dir, `${n}.key`);
      const csr = join(dir, `${n}.csr`);
      const leafCert = join(dir, `${n}.crt`);
      const ext = join(dir, `${n}.ext`);
      const lines = [`extendedKeyUsage=${o.usage === 'client' ? 'clientAuth' : 'serverAuth'}`, 'basicConstraints=CA:FALSE'];
      if (o.san && o.san.length > 0) lines.push(`subjectAltName=${o.san.map((s) => (s.startsWith('IP:') ? s : `DNS:${s}`)).join(',')}`);
      writeFileSync(ext, lines.join('\n') + '\n');
      openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey, '-out', csr, '-subj', `/CN=${o.cn}/O=Seldon Gateway Tests`]);
      openssl(['x509', '-req', '-in', csr, '-CA', cert, '-CAkey', key, '-set_serial', String(o.serial), '-days', String(o.days ?? 2), '-extfile', ext, '-out', leafCert]);
      return { cert: readFileSync(leafCert, 'utf8'), key: readFileSync(leafKey, 'utf8'), serial: serialHex(o.serial) };
    },
  };
}

/** How Node's X509Certificate / getPeerCertificate print a small serial: upper-case hex, even length. */
export function serialHex(n: number): string {
  const h = n.toString(16).toUpperCase();
  return h.length % 2 ? `0${h}` : h;
}

/** A temp dir for certificates. */
export function certDir(): string {
  return mkdtempSync(join(tmpdir(), 'sgw-certs-'));
}
