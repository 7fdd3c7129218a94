/** --upstream-tls-context (gateway/config/upstream-tls.ts): contexts read at start, named for compiling; a bad one exits 2 in the gateway's words. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { certDir, makeCa } from '../../helpers/tls-certs.js';
import { refusal } from './refusal.js';

const dir = certDir();
const ca = makeCa(dir, 'Model CA');
const client = makeCa(dir, 'Client CA').issue({ cn: 'gateway', serial: 7, usage: 'client' });
const other = makeCa(dir, 'Other CA').issue({ cn: 'gateway', serial: 8, usage: 'client' });
const write = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const caFile = write('ca.pem', ca.cert);
const certFile = write('client.pem', client.cert);
const keyFile = write('client.key', client.key);
const otherKey = write('other.key', other.key);
const manifests = mkdtempSync(join(dir, 'm-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const config = (args: string[], env: Record<string, string> = {}) => parseConfig('serve', ['--manifests', manifests, ...args], env);

describe('--upstream-tls-context', () => {
  it('reads each context (repeated, or several separated by ;) and names them for compiling', () => {
    const c = config(['--upstream-tls-context', `mtls=ca=${caFile},cert=${certFile},key=${keyFile},sni=model.internal`, '--upstream-tls-context', `plain=ca=${caFile};other=ca=${caFile}`]);
    expect([...c.upstream.tlsContexts.keys()]).toEqual(['mtls', 'plain', 'other']);
    expect(c.upstream.tlsContexts.get('mtls')).toEqual({ ca: ca.cert, cert: client.cert, key: client.key, sni: 'model.internal' });
    expect(c.upstream.tlsContexts.get('plain')).toEqual({ ca: ca.cert, cert: undefined, key: undefined, sni: undefined });
    expect([...c.compile.tlsContexts!]).toEqual(['mtls', 'plain', 'other']);
  });

  it('from the environment, split on commas like every list, the same', () => {
    const c = config([], { SELDON_GATEWAY_UPSTREAM_TLS_CONTEXT: `mtls=ca=${caFile},cert=${certFile},key=${keyFile};b=ca=${caFile}` });
    expect([...c.upstream.tlsContexts.keys()]).toEqual(['mtls', 'b']);
    expect(c.upstream.tlsContexts.get('mtls')!.cert).toBe(client.cert);
  });

  it('none: no context, and a Mapping may name none', () => {
    const c = config([]);
    expect(c.upstream.tlsContexts.size).toBe(0);
    expect([...c.compile.tlsContexts!]).toEqual([]);
  });

  it.each([
    [['cert=/x'], '--upstream-tls-context: "cert=/x" comes before any NAME=ca=<file>'],
    [['a=cert=/x'], '--upstream-tls-context a: ca=<file> is required'],
    [['a=ca=/nonexistent/ca.pem'], '--upstream-tls-context a: cannot read ca file /nonexistent/ca.pem: ENOENT'],
    [['a=ca=CA,cert=CERT'], '--upstream-tls-context a: cert and key go together'],
    [['a=ca=CA,colour=blue'], '--upstream-tls-context: "colour=blue" is not NAME=ca=<file>, cert=<file>, key=<file> or sni=<host>'],
    [['a=ca=CA,sni=bad host'], '--upstream-tls-context a: sni "bad host" is not a host name'],
    [['a=ca=CA', 'a=ca=CA'], '--upstream-tls-context: a is defined twice'],
    [['a=ca=CA,ca=CA'], '--upstream-tls-context a: ca is given twice'],
    [['a=ca=CA,cert=CERT,key=OTHERKEY'], '--upstream-tls-context a: '],
  ])('%j is refused: %s', (entries, words) => {
    const args = entries.flatMap((e) => ['--upstream-tls-context', e.replaceAll('OTHERKEY', otherKey).replaceAll('CA', caFile).replaceAll('CERT', certFile)]);
    expect(refusal(() => config(args))).toContain(words);
  });
});
