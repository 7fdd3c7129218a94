/**
 * Certificate rotation under load (edge/certificate-store.ts): the CLI with two workers serves a --tls-dir laid
 * out as kubelet mounts a Secret (`tls.crt -> ..data/tls.crt`, `..data -> ..<timestamp>`), while
 * keep-alive clients and clients that open a new connection per request keep sending. The
 * Secret is swapped the way kubelet does it (a new timestamped directory, `..data` renamed over
 * atomically): no request fails, new handshakes get the new serial within seconds on every
 * worker, connections opened before keep the certificate they negotiated. A pair written half
 * (certificate without its key) or truncated keeps the old one and is counted; completing it
 * applies it.
 */
import { X509Certificate } from 'node:crypto';
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { join } from 'node:path';
import tls, { type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRecordingUpstream, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { poll, startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { certDir, makeCa, type Ca, type Pem } from '../../helpers/tls-certs.js';

const PATH = '/seldon/models/iris/api/v1.0/predictions';
const BODY = '{"data":{"ndarray":[[1,2]]}}';

let dir: string;
let ca: Ca;
let upstream: RecordingUpstream;
let gw: CliGateway;
let secret: string;
let generation = 0;

/** Write a pair as kubelet does: a new `..<ts>` directory, `..data` swapped to it by rename, the old one removed. */
function kubeletWrite(pem: Pem): void {
  const ts = `..2026_11_22_00_00_${String(generation++).padStart(2, '0')}`;
  mkdirSync(join(secret, ts));
  writeFileSync(join(secret, ts, 'tls.crt'), pem.cert);
  writeFileSync(join(secret, ts, 'tls.key'), pem.key);
  symlinkSync(ts, join(secret, '..data_tmp'));
  renameSync(join(secret, '..data_tmp'), join(secret, '..data'));
  for (const f of ['tls.crt', 'tls.key']) {
    try {
      symlinkSync(join('..data', f), join(secret, f));
    } catch {
      // exists already: it points through ..data
    }
  }
  if (generation > 1) rmSync(join(secret, `..2026_11_22_00_00_${String(generation - 2).padStart(2, '0')}`), { recursive: true, force: true });
}

async function metricSum(series: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gw.admin}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** The serial a new handshake for `servername` gets. */
function servedSerial(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // The chain is verified; the name is not (an unknown name gets the default certificate).
    const s = tls.connect({ host: '127.0.0.1', port: gw.port, servername, ca: ca.cert, ALPNProtocols: ['http/1.1'], checkServerIdentity: () => undefined }, () => {
      const serial = s.getPeerCertificate().serialNumber;
      s.destroy();
      resolve(serial);
    });
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy(new Error('timed out')));
  });
}

interface Sent {
  ok: boolean;
  error?: string;
  serial: string;
  socket: TLSSocket;
  reusedSocket: boolean;
  at: number;
}

function post(agent: https.Agent | false, servername: string): Promise<Sent> {
  return new Promise((resolve) => {
    const req = https.request(
      { host: '127.0.0.1', port: gw.port, method: 'POST', path: PATH, servername, ca: ca.cert, agent, headers: { 'content-type': 'application/json', host: servername }, timeout: 10_000 },
      (res) => {
        const socket = res.socket as TLSSocket;
        const serial = socket.getPeerCertificate().serialNumber;
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () =>
          resolve({
            ok: res.statusCode === 200 && body.includes('"upstream":"iris"'),
            ...(res.statusCode === 200 ? {} : { error: `status ${res.statusCode}: ${body}` }),
            serial,
            socket,
            reusedSocket: req.reusedSocket,
            at: Date.now(),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => resolve({ ok: false, error: e.message, serial: '', socket: undefined as unknown as TLSSocket, reusedSocket: req.reusedSocket, at: Date.now() }));
    req.end(BODY);
  });
}

/** Closed-loop load until `stop()`: `keepAlive` workers on one keep-alive agent, `fresh` workers opening a connection per request. */
function load(servername: string, keepAlive: number, fresh: number): { results: Sent[]; stop(): Promise<void>; agent: https.Agent } {
  const agent = new https.Agent({ keepAlive: true, maxSockets: keepAlive });
  const results: Sent[] = [];
  let running = true;
  const started = Date.now();
  const loop = async (a: https.Agent | false): Promise<void> => {
    // Bounded: stop() or 60 s, whichever first.
    while (running && Date.now() - started < 60_000) results.push(await post(a, servername));
  };
  const loops = [...Array.from({ length: keepAlive }, () => loop(agent)), ...Array.from({ length: fresh }, () => loop(false))];
  return {
    results,
    agent,
    async stop() {
      running = false;
      await Promise.all(loops);
      agent.destroy();
    },
  };
}

beforeAll(async () => {
  dir = certDir();
  ca = makeCa(dir, 'Rotation CA');
  secret = join(dir, 'secret');
  mkdirSync(secret);
  kubeletWrite(ca.issue({ cn: 'rot.test', san: ['rot.test'], serial: 1, days: 2 }));
  // A second pair, plain files in a subdirectory: written in place, half at a time.
  mkdirSync(join(secret, 'half'));
  const half = ca.issue({ cn: 'half.test', san: ['half.test'], serial: 10 });
  writeFileSync(join(secret, 'half', 'tls.crt'), half.cert);
  writeFileSync(join(secret, 'half', 'tls.key'), half.key);
  upstream = await startRecordingUpstream({ name: 'iris' });
  const manifests = join(dir, 'm');
  mkdirSync(manifests);
  writeFileSync(join(manifests, 'iris.yaml'), sdep('iris', 'models', { predictors: [{ name: 'default' }] }));
  gw = await startCli(['-f', manifests, '--workers', '2', '--resolve', `iris-default.models:8000=127.0.0.1:${upstream.port}`, '--tls-dir', secret]);
});

afterAll(async () => {
  if (gw) expect(await gw.stop()).toBe(0);
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('certificate rotation under load (two workers)', () => {
  it('a kubelet-style ..data swap: no request fails, new handshakes get the new serial on every worker, open connections keep theirs', async () => {
    expect(await servedSerial('rot.test')).toBe('01');
    const traffic = load('rot.test', 4, 2);
    try {
      await poll(
        'traffic flowing',
        async () => traffic.results.length,
        (n) => n >= 40,
        10_000,
      );
      const beforeSwap = traffic.results.length;
      const next = ca.issue({ cn: 'rot.test', san: ['rot.test'], serial: 2, days: 3 });
      const reloads = await metricSum('seldon_gateway_tls_certificate_reloads_total{result="success"}');
      kubeletWrite(next);
      // Within seconds every worker serves the new pair: 12 new handshakes in a row get serial 02.
      await poll(
        'new handshakes with the new serial',
        async () => {
          const serials = [];
          for (let i = 0; i < 12; i++) serials.push(await servedSerial('rot.test'));
          return serials;
        },
        (serials) => serials.every((s) => s === '02'),
        10_000,
      );
      await poll(
        'both workers counted the reload',
        () => metricSum('seldon_gateway_tls_certificate_reloads_total{result="success"}'),
        (n) => n === reloads + 2,
        5000,
      );
      const expiry = Math.floor(new Date(new X509Certificate(next.cert).validTo).getTime() / 1000);
      await poll(
        'expiry gauge',
        () => metricSum('seldon_gateway_tls_certificate_expiry_timestamp_seconds{name="rot.test"}'),
        (v) => v === expiry,
        5000,
      );
      // More traffic after the swap, then stop.
      await poll(
        'traffic after the swap',
        async () => traffic.results.length,
        (n) => n >= beforeSwap + 150,
        20_000,
      );
    } finally {
      await traffic.stop();
    }
    const failed = traffic.results.filter((r) => !r.ok);
    expect(failed.map((f) => f.error)).toEqual([]);
    // Fresh connections saw both certificates; a keep-alive connection opened before the swap
    // served requests after it, still with the old certificate.
    const serials = new Set(traffic.results.map((r) => r.serial));
    expect([...serials].sort()).toEqual(['01', '02']);
    const lastNew = traffic.results.findLast((r) => !r.reusedSocket)!;
    expect(lastNew.serial).toBe('02');
    const keptOld = traffic.results.filter((r) => r.reusedSocket && r.serial === '01' && r.at > traffic.results.find((x) => x.serial === '02')!.at);
    expect(keptOld.length).toBeGreaterThan(0);
  });

  it('a pair written half (a new certificate, the old key) or truncated keeps serving the old one, counted; completing it applies it', async () => {
    expect(await servedSerial('half.test')).toBe('0A');
    const traffic = load('half.test', 2, 1);
    try {
      const failures = await metricSum('seldon_gateway_tls_certificate_reloads_total{result="failure"}');
      const next = ca.issue({ cn: 'half.test', san: ['half.test'], serial: 11 });
      writeFileSync(join(secret, 'half', 'tls.crt'), next.cert);
      await poll(
        'the mismatch counted by both workers',
        () => metricSum('seldon_gateway_tls_certificate_reloads_total{result="failure"}'),
        (n) => n === failures + 2,
        10_000,
      );
      for (let i = 0; i < 6; i++) expect(await servedSerial('half.test')).toBe('0A');
      writeFileSync(join(secret, 'half', 'tls.key'), next.key);
      await poll(
        'the completed pair served',
        async () => Promise.all(Array.from({ length: 8 }, () => servedSerial('half.test'))),
        (s) => s.every((x) => x === '0B'),
        10_000,
      );
      // Truncated: half of the PEM.
      const third = ca.issue({ cn: 'half.test', san: ['half.test'], serial: 12 });
      writeFileSync(join(secret, 'half', 'tls.crt'), third.cert.slice(0, third.cert.length / 2));
      await poll(
        'the truncated file counted',
        () => metricSum('seldon_gateway_tls_certificate_reloads_total{result="failure"}'),
        (n) => n === failures + 4,
        10_000,
      );
      for (let i = 0; i < 6; i++) expect(await servedSerial('half.test')).toBe('0B');
      // The other pair was never disturbed.
      expect(await servedSerial('rot.test')).toBe('02');
    } finally {
      await traffic.stop();
    }
    expect(traffic.results.filter((r) => !r.ok).map((r) => r.error)).toEqual([]);
    expect(traffic.results.length).toBeGreaterThan(10);
    expect(gw.output()).toMatch(/TLS certificate not reloaded: the previous one keeps serving/);
  });

  it('a Secret mounted as a new subdirectory adds its names; removed, they fall back to the default certificate', async () => {
    expect(await servedSerial('new.test')).toBe('02');
    const added = ca.issue({ cn: 'new.test', san: ['new.test'], serial: 20 });
    mkdirSync(join(secret, 'new'));
    writeFileSync(join(secret, 'new', 'tls.key'), added.key);
    writeFileSync(join(secret, 'new', 'tls.crt'), added.cert);
    await poll(
      'the new name served',
      async () => Promise.all(Array.from({ length: 8 }, () => servedSerial('new.test'))),
      (s) => s.every((x) => x === '14'),
      10_000,
    );
    const expiry = Math.floor(new Date(new X509Certificate(added.cert).validTo).getTime() / 1000);
    await poll(
      'its expiry gauge',
      () => metricSum('seldon_gateway_tls_certificate_expiry_timestamp_seconds{name="new.test"}'),
      (v) => v === expiry,
      5000,
    );
    rmSync(join(secret, 'new'), { recursive: true });
    await poll(
      'the default again',
      async () => Promise.all(Array.from({ length: 8 }, () => servedSerial('new.test'))),
      (s) => s.every((x) => x === '02'),
      10_000,
    );
    await poll(
      'its gauge gone',
      () => metricSum('seldon_gateway_tls_certificate_expiry_timestamp_seconds{name="new.test"}'),
      (v) => v === 0,
      5000,
    );
  });
});
