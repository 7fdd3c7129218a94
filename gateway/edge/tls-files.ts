/**
 * The TLS files (`--tls-cert`/`--tls-key`, `--tls-dir`, `--tls-client-ca`): which pairs the
 * configuration names as they are on disk now, and reading one so that it is known to work (PEM
 * parses, the key matches the certificate) before it is served. `checkTlsFiles` is start-up's
 * check, whose first problem names its file (the CLI exits 2).
 */
import { createHash, createPrivateKey, randomBytes, X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import tls, { type SecureContext } from 'node:tls';
import type { TlsConfig } from '../config/tls.js';

/** The files of one pair in a `--tls-dir` (the names cert-manager and `kubectl create secret tls` use). */
export const DIR_CERT = 'tls.crt';
export const DIR_KEY = 'tls.key';
/** The lowest TLS version every context accepts. */
export const MIN_VERSION = 'TLSv1.2';

/** Where one pair comes from: its label (logs, errors) and its two files. */
export interface PairSource {
  readonly id: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** A pair that validated, with what SNI and the metrics need. */
export interface LoadedPair extends PairSource {
  /** sha256 of the PEM bytes of both files: the same bytes are never loaded twice. */
  readonly digest: string;
  readonly cert: Buffer;
  readonly key: Buffer;
  /** DNS names it serves, lower case (`*.example.com` for wildcards). */
  readonly names: readonly string[];
  /** Its first name, or the file when it has none: the `name` label of the expiry gauge. */
  readonly label: string;
  readonly notAfter: Date;
  readonly serial: string;
  context: SecureContext;
}

/** A certificate, key or CA file that cannot be used at start-up; the message names the file (the CLI exits 2). */
export class TlsFileError extends Error {}

export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** The digest that tells a pair's content from another's: the same bytes are never loaded twice. */
export const pairDigest = (cert: Buffer, key: Buffer): string => createHash('sha256').update(cert).update('\0').update(key).digest('hex');

/** Throws when `pem` is not a CA certificate a context can verify clients with. */
export function checkCa(pem: Buffer): void {
  new X509Certificate(pem);
  tls.createSecureContext({ ca: pem });
}

/** The DNS names a certificate is for: subjectAltName DNS entries, else its CN. */
export function certificateNames(x509: X509Certificate): string[] {
  const san = (x509.subjectAltName ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('DNS:'))
    .map((s) => s.slice(4).toLowerCase());
  if (san.length > 0) return [...new Set(san)];
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn ? [cn.trim().toLowerCase()] : [];
}

/**
 * Read and validate one pair: both files readable, the certificate PEM parses, the key parses
 * (not encrypted) and belongs to it. Throws an Error naming the file at fault.
 */
export function readPair(source: PairSource, ca: Buffer | undefined, ticketKeys: Buffer): LoadedPair {
  const read = (what: string, file: string): Buffer => {
    try {
      return readFileSync(file);
    } catch (err) {
      throw new Error(`${what} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`, { cause: err });
    }
  };
  const cert = read('certificate', source.certFile);
  const key = read('key', source.keyFile);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new Error(`certificate ${source.certFile}: not a PEM certificate (${errorText(err)})`, { cause: err });
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new Error(`key ${source.keyFile}: not an unencrypted PEM private key (${errorText(err)})`, { cause: err });
  }
  if (!x509.checkPrivateKey(privateKey)) throw new Error(`key ${source.keyFile} does not match certificate ${source.certFile}`);
  let context: SecureContext;
  try {
    context = tls.createSecureContext({ cert, key, ...(ca ? { ca } : {}), minVersion: MIN_VERSION, ticketKeys });
  } catch (err) {
    throw new Error(`certificate ${source.certFile} with key ${source.keyFile}: ${errorText(err)}`, { cause: err });
  }
  const names = certificateNames(x509);
  return {
    ...source,
    digest: pairDigest(cert, key),
    cert,
    key,
    names,
    label: names[0] ?? source.certFile,
    notAfter: new Date(x509.validTo),
    serial: x509.serialNumber,
    context,
  };
}

/** The pairs the configuration names, as they are on disk now (a `--tls-dir` is listed again each time). */
export function pairSources(config: TlsConfig): PairSource[] {
  const out: PairSource[] = [];
  if (config.certFile !== undefined && config.keyFile !== undefined) out.push({ id: '--tls-cert', certFile: config.certFile, keyFile: config.keyFile });
  const dir = config.dir;
  if (dir === undefined) return out;
  const has = (d: string): boolean => statSync(join(d, DIR_CERT), { throwIfNoEntry: false })?.isFile() === true;
  if (has(dir)) out.push({ id: dir, certFile: join(dir, DIR_CERT), keyFile: join(dir, DIR_KEY) });
  let entries: string[] = [];
  try {
    entries = readdirSync(dir).sort();
  } catch {
    // Gone or unreadable: what was loaded keeps serving (start-up checks the directory itself).
  }
  for (const name of entries) {
    if (name.startsWith('.')) continue;
    const sub = join(dir, name);
    if (statSync(sub, { throwIfNoEntry: false })?.isDirectory() && has(sub)) out.push({ id: sub, certFile: join(sub, DIR_CERT), keyFile: join(sub, DIR_KEY) });
  }
  return out;
}

/**
 * Load every pair once, as start-up does: the first problem is a TlsFileError naming the file
 * (the CLI exits 2). The cluster primary calls it before starting workers.
 */
export function checkTlsFiles(config: TlsConfig): void {
  readClientCa(config);
  if (config.dir !== undefined && !statSync(config.dir, { throwIfNoEntry: false })?.isDirectory()) {
    throw new TlsFileError(`--tls-dir ${config.dir}: not a directory`);
  }
  const sources = pairSources(config);
  if (sources.length === 0) throw new TlsFileError(`--tls-dir ${config.dir}: no ${DIR_CERT} and ${DIR_KEY} in it or in any subdirectory`);
  const keys = randomBytes(48);
  for (const s of sources) {
    try {
      readPair(s, undefined, keys);
    } catch (err) {
      throw new TlsFileError(`${s.id === '--tls-cert' ? '--tls-cert/--tls-key' : `--tls-dir`}: ${errorText(err)}`);
    }
  }
}

export function readClientCa(config: TlsConfig): Buffer | undefined {
  if (config.clientCaFile === undefined) return undefined;
  let pem: Buffer;
  try {
    pem = readFileSync(config.clientCaFile);
  } catch (err) {
    throw new TlsFileError(`--tls-client-ca ${config.clientCaFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorText(err)})`);
  }
  try {
    checkCa(pem);
  } catch (err) {
    throw new TlsFileError(`--tls-client-ca ${config.clientCaFile}: not a PEM certificate (${errorText(err)})`);
  }
  return pem;
}
