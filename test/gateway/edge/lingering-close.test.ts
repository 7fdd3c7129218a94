/**
 * An answer sent while the client is still sending must reach it: the gateway closes such a
 * connection with a lingering close (edge/lingering-close.ts), as nginx does. Closed at once, the
 * request's unread bytes make the gateway's kernel reset the connection, and the client, whose
 * next write fails, drops the answer it had not read yet.
 *
 * Tested as a client suffers it: rounds of a large upload written as fast as the client can,
 * answered early (by the model after reading the head, or by the gateway itself), each round
 * reading the whole answer, on every path: the lane, Node's server (a large or chunked body), TLS,
 * the gateway's own 413. Then the budgets: a client that never stops sending is cut off.
 *
 * The gateway runs as its own process (the CLI): in the test's process, the client and the
 * gateway would take turns on one event loop, and the race that loses answers hardly happens.
 * Without the lingering close, on this kind of host: the gateway's own 413 lost the answer in 20
 * to 50 rounds of 100 (TLS: 97), the model's early answer to a 32 MiB body in 1 to 3.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { LINGER_DEFAULTS } from '../../../gateway/edge/lingering-close.js';
import { ByteReader, readHttpResponse } from '../../fixtures/recording-upstream.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { sdep } from '../../helpers/gateway.js';
import { certDir, makeCa, type Ca } from '../../helpers/tls-certs.js';
import { sleep } from '../../helpers/wait.js';

const PATH = '/seldon/models/early/api/v1.0/predictions';
const MiB = 1024 * 1024;
/** The upload the gateway itself refuses at its head (--max-body 1MiB). */
const UPLOAD = Buffer.alloc(4 * MiB, 0x31);
/**
 * The upload the model refuses: large enough that the client is still sending when the answer
 * comes back through the gateway (over loopback a 4 MiB body is all in the kernels' buffers by then).
 */
const LARGE_UPLOAD = Buffer.alloc(32 * MiB, 0x31);
const ROUNDS = 100;
/** Each case's rounds stop after this long (a round takes a few ms). */
const ROUNDS_MS = 40_000;

/** What the model answers, at once after the request head. */
const REFUSAL = JSON.stringify({ status: { code: 413, info: 'the model refuses bodies over 1 MiB', reason: 'MICROSERVICE_BAD_DATA', status: 'FAILURE' } });

interface EarlyModel {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A model that answers 413 as soon as it has a request head, then (its own lingering close)
 * half-closes and reads and drops whatever the gateway still sends until the gateway closes: its
 * answer always reaches the gateway, so a lost answer is the gateway's doing.
 */
async function startEarlyModel(): Promise<EarlyModel> {
  const sockets = new Set<net.Socket>();
  const model = {
    port: 0,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
    let head = '';
    const onData = (d: Buffer): void => {
      head += d.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      socket.off('data', onData);
      socket.on('data', () => undefined);
      socket.on('end', () => socket.destroy());
      socket.end(`HTTP/1.1 413 Payload Too Large\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(REFUSAL)}\r\nConnection: close\r\n\r\n${REFUSAL}`);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  model.port = (server.address() as AddressInfo).port;
  return model;
}

/** A request head to the model with `headers`. */
const post = (headers: string): string => `POST ${PATH} HTTP/1.1\r\nHost: models.example.com\r\nContent-Type: application/json\r\n${headers}\r\n`;

/** A request of `body` as the client frames it: its head, and the bytes that follow. */
function upload(body: Buffer, framing: 'cl' | 'chunked'): { head: string; bytes: Buffer[] } {
  if (framing === 'cl') return { head: post(`Content-Length: ${body.length}\r\n`), bytes: [body] };
  const bytes: Buffer[] = [];
  const size = 64 * 1024;
  for (let i = 0; i < body.length; i += size) bytes.push(Buffer.from(`${size.toString(16)}\r\n`), body.subarray(i, i + size), Buffer.from('\r\n'));
  bytes.push(Buffer.from('0\r\n\r\n'));
  return { head: post('Transfer-Encoding: chunked\r\n'), bytes };
}

type Connect = () => Promise<net.Socket>;

// The clients send their whole body whatever happens (allowHalfOpen: the gateway's FIN does not
// end their side), as upload clients do: the lingering close must keep reading.
const cleartext =
  (port: number): Connect =>
  async () => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return socket;
  };

const secure =
  (port: number, ca: string): Connect =>
  async () => {
    // allowHalfOpen is passed on to the TLSSocket (Node's types leave it out).
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'gateway.test', ALPNProtocols: ['http/1.1'], allowHalfOpen: true } as tls.ConnectionOptions);
    socket.on('error', () => undefined);
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket;
  };

/**
 * One round: write `head` and `bytes` as fast as the socket takes them, read the answer
 * meanwhile. 'ok' when the whole expected answer (status and body) arrived, else what the client got.
 */
async function round(connect: Connect, { head, bytes }: { head: string; bytes: Buffer[] }, expected: { status: number; body?: string }): Promise<string> {
  const socket = await connect();
  const reader = new ByteReader(socket);
  try {
    socket.write(head);
    for (const b of bytes) socket.write(b);
    const res = await readHttpResponse(reader, { method: 'POST', timeoutMs: 10_000 });
    if (res === null) return `no answer (${reader.error ? (reader.error as NodeJS.ErrnoException).code : 'ended'}, ${reader.received} bytes received)`;
    if (res.status !== expected.status || !res.complete) return `${res.status}, complete ${res.complete}`;
    if (expected.body !== undefined && res.body.toString() !== expected.body) return `${res.status}, another body: ${res.body.toString().slice(0, 120)}`;
    return 'ok';
  } finally {
    socket.destroy();
  }
}

/** Run rounds (up to ROUNDS, within ROUNDS_MS): the outcomes that were not 'ok', and how many ran. */
async function rounds(one: () => Promise<string>): Promise<{ ran: number; lost: string[] }> {
  const end = Date.now() + ROUNDS_MS;
  const lost: string[] = [];
  let ran = 0;
  for (; ran < ROUNDS && Date.now() < end; ran++) {
    const outcome = await one();
    if (outcome !== 'ok') lost.push(`round ${ran}: ${outcome}`);
  }
  return { ran, lost };
}

let model: EarlyModel;
/** TLS and cleartext on one port, the default limits. */
let gw: CliGateway;
/** The same, --max-body 1MiB (the gateway's own 413) and --lingering-bytes 8MiB. */
let limited: CliGateway;
/** --max-body 1MiB, --lingering-time 4s, --lingering-timeout 1s. */
let timed: CliGateway;
let dir: string;
let ca: Ca;
const manifests = { 'early.yaml': sdep('early', 'models', { predictors: [{ name: 'default' }] }) };

beforeAll(async () => {
  model = await startEarlyModel();
  dir = certDir();
  ca = makeCa(dir);
  const leaf = ca.issue({ cn: 'gateway.test', san: ['gateway.test'], serial: 2 });
  writeFileSync(join(dir, 'gw.crt'), leaf.cert);
  writeFileSync(join(dir, 'gw.key'), leaf.key);
  mkdirSync(join(dir, 'manifests'));
  for (const [f, y] of Object.entries(manifests)) writeFileSync(join(dir, 'manifests', f), y);
  const common = ['--manifests', join(dir, 'manifests'), '--workers', '1', '--access-log', 'off', '--resolve', `early-default.models:8000=127.0.0.1:${model.port}`];
  const tlsOn = ['--tls-cert', join(dir, 'gw.crt'), '--tls-key', join(dir, 'gw.key'), '--tls-allow-cleartext'];
  // Separate processes, as clients meet the gateway: in the test's own process, the client and
  // the gateway take turns on one event loop, and the race that loses answers hardly happens.
  const start = (args: string[]): Promise<CliGateway> => startCli([...common, ...args], { readyWithinMs: 60_000 });
  [gw, limited, timed] = await Promise.all([
    start(tlsOn),
    start([...tlsOn, '--max-body', '1MiB', '--lingering-bytes', '8MiB']),
    start(['--max-body', '1MiB', '--lingering-time', '4s', '--lingering-timeout', '1s']),
  ]);
}, 120_000);

afterAll(async () => {
  await Promise.all([gw?.stop(), limited?.stop(), timed?.stop()]);
  await model?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('an answer sent while the client is still sending reaches it, every round', () => {
  const expectAll = (r: { ran: number; lost: string[] }): void => {
    expect(r.lost, `${r.lost.length} of ${r.ran} rounds lost the answer`).toEqual([]);
    expect(r.ran).toBeGreaterThanOrEqual(20);
  };
  const refused = { status: 413, body: REFUSAL };

  it("the model refuses a 32 MiB Content-Length body after its head (the lane hands the request to Node's server)", async () => {
    expectAll(await rounds(() => round(cleartext(gw.port), upload(LARGE_UPLOAD, 'cl'), refused)));
  }, 60_000);

  it("the model refuses a 32 MiB chunked body after its head (Node's server)", async () => {
    expectAll(await rounds(() => round(cleartext(gw.port), upload(LARGE_UPLOAD, 'chunked'), refused)));
  }, 60_000);

  it('the lane answers a request that asked to close while the client pipelines 32 MiB more', async () => {
    const small = '{"data":{"ndarray":[[1]]}}';
    const next = upload(LARGE_UPLOAD, 'cl');
    const pipelined = { head: post(`Content-Length: ${small.length}\r\nConnection: close\r\n`) + small, bytes: [Buffer.from(next.head), ...next.bytes] };
    expectAll(await rounds(() => round(cleartext(gw.port), pipelined, refused)));
  }, 60_000);

  it('the gateway itself refuses a 4 MiB body over --max-body (413)', async () => {
    expectAll(await rounds(() => round(cleartext(limited.port), upload(UPLOAD, 'cl'), { status: 413 })));
    expectAll(await rounds(() => round(cleartext(limited.port), upload(UPLOAD, 'chunked'), { status: 413 })));
  }, 90_000);

  it('over TLS: the model refuses a 4 MiB body after its head', async () => {
    expectAll(await rounds(() => round(secure(gw.port, ca.cert), upload(UPLOAD, 'cl'), refused)));
    expectAll(await rounds(() => round(secure(gw.port, ca.cert), upload(UPLOAD, 'chunked'), refused)));
  }, 90_000);

  it('over TLS: the gateway itself refuses a 4 MiB body over --max-body (413)', async () => {
    expectAll(await rounds(() => round(secure(limited.port, ca.cert), upload(UPLOAD, 'cl'), { status: 413 })));
  }, 60_000);
});

/**
 * After the answer: keep writing `piece` (then wait `pauseMs`; none: as fast as the socket
 * takes it) until the gateway closes the connection. How long that took after the whole answer
 * was read, and how many bytes the client had written by then.
 */
async function sendUntilCut(connect: Connect, head: string, piece: Buffer, pauseMs: number, status: number): Promise<{ afterAnswerMs: number; written: number; answered: number }> {
  const socket = await connect();
  const reader = new ByteReader(socket);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  let cut = false;
  void closed.then(() => (cut = true));
  let answeredAt = 0;
  let written = 0;
  const answer = readHttpResponse(reader, { method: 'POST', timeoutMs: 10_000 }).then((res) => {
    answeredAt = performance.now();
    return res;
  });
  socket.write(head);
  const writing = (async () => {
    while (!cut && !socket.destroyed) {
      written += piece.length;
      if (!socket.write(piece)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
      // Pacing of a slow sender (its exact rate does not matter).
      if (pauseMs > 0) await Promise.race([sleep(pauseMs), closed]);
      // A client reads while it writes (curl polls both ways). Without this turn of the event loop,
      // writes the kernel takes at once run back to back (60 and more here): the gateway, reading
      // on another core, could take all of --lingering-bytes before the client looked at its answer,
      // and the reset that ends the linger would then fail a write and drop that unread answer.
      else await new Promise((resolve) => setImmediate(resolve));
    }
  })();
  try {
    const res = await answer;
    expect(res?.status, 'the answer, read whole').toBe(status);
    expect(res?.complete).toBe(true);
    await Promise.race([closed, sleep(60_000)]);
    expect(cut, 'the gateway closed the connection').toBe(true);
    await writing;
    return { afterAnswerMs: performance.now() - answeredAt, written, answered: answeredAt };
  } finally {
    socket.destroy();
  }
}

describe('a lingering close ends within its budgets', () => {
  const piece = Buffer.alloc(64 * 1024, 0x31);
  const endless = post(`Content-Length: ${1024 ** 3}\r\n`);

  it('a client that sends as fast as it can is cut off after --lingering-bytes (8 MiB), long before --lingering-time (30 s)', async () => {
    const r = await sendUntilCut(cleartext(limited.port), endless, piece, 0, 413);
    expect(r.written, 'bytes the client wrote').toBeGreaterThan(8 * 1024 * 1024);
    expect(r.afterAnswerMs).toBeLessThan(15_000);
  }, 30_000);

  it('on the lane too: bytes sent after a request that asked to close', async () => {
    const small = '{"data":{"ndarray":[[1]]}}';
    const r = await sendUntilCut(cleartext(limited.port), post(`Content-Length: ${small.length}\r\nConnection: close\r\n`) + small + endless, piece, 0, 413);
    expect(r.written).toBeGreaterThan(8 * 1024 * 1024);
    expect(r.afterAnswerMs).toBeLessThan(15_000);
  }, 30_000);

  it('over TLS too', async () => {
    const r = await sendUntilCut(secure(limited.port, ca.cert), endless, piece, 0, 413);
    expect(r.written).toBeGreaterThan(8 * 1024 * 1024);
    expect(r.afterAnswerMs).toBeLessThan(15_000);
  }, 30_000);

  it('a client that keeps sending slowly is cut off after --lingering-time (4 s)', async () => {
    // 64 KiB every 100 ms: never idle for --lingering-timeout, far under --lingering-bytes.
    const r = await sendUntilCut(cleartext(timed.port), endless, piece, 100, 413);
    expect(r.afterAnswerMs).toBeGreaterThanOrEqual(3_900);
    expect(r.afterAnswerMs).toBeLessThan(12_000);
  }, 30_000);

  it('a client that goes silent without closing is cut off after --lingering-timeout (1 s), before --lingering-time (4 s)', async () => {
    const socket = await cleartext(timed.port)();
    const reader = new ByteReader(socket);
    const closed = new Promise<boolean>((resolve) => socket.once('close', () => resolve(true)));
    try {
      socket.write(endless);
      socket.write(Buffer.alloc(256 * 1024, 0x31));
      const res = await readHttpResponse(reader, { method: 'POST', timeoutMs: 10_000 });
      expect(res?.status).toBe(413);
      // The case itself: 2 s of silence, over the idle budget and 2 s short of the total one.
      await sleep(2_000);
      // A silent client cannot see the close (the gateway's FIN came with the answer): bytes sent
      // now meet a reset, which the next write reports.
      const t0 = Date.now();
      let cut = false;
      void closed.then(() => (cut = true));
      while (!cut && Date.now() - t0 < 10_000) {
        socket.write('1');
        await Promise.race([closed, sleep(50)]);
      }
      expect(cut, 'reset by the gateway').toBe(true);
      // Closed already (the total budget alone would have let these bytes in for 2 s more).
      expect(Date.now() - t0).toBeLessThan(1_500);
    } finally {
      socket.destroy();
    }
  }, 30_000);
});

describe('lingering close settings', () => {
  it("default to nginx's lingering_time and lingering_timeout (the defaults the close falls back on), and are checked", () => {
    expect(parseConfig('serve', [], {}).edge.lingering).toEqual(LINGER_DEFAULTS);
    expect(LINGER_DEFAULTS).toEqual({ enabled: true, timeMs: 30_000, timeoutMs: 5_000, maxBytes: 100 * MiB });
    expect(parseConfig('serve', ['--lingering-close', 'off', '--lingering-time', '0'], {}).edge.lingering).toMatchObject({ enabled: false, timeMs: 0 });
    expect(parseConfig('serve', [], { SELDON_GATEWAY_LINGERING_BYTES: '1MiB', SELDON_GATEWAY_LINGERING_TIMEOUT: '2s' }).edge.lingering).toMatchObject({ maxBytes: MiB, timeoutMs: 2_000 });
    expect(() => parseConfig('serve', ['--lingering-close', 'always'], {})).toThrow(/--lingering-close: "always" is not on or off/);
    expect(() => parseConfig('serve', ['--lingering-timeout', '0'], {})).toThrow(UsageError);
  });
});
