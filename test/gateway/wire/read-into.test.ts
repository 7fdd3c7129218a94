/**
 * `readInto` (gateway/wire/read-buffer.ts) on this runtime: an accepted socket reads into the gateway's
 * buffer, as `net.connect({ onread })` would. It leans on Node's internals (the `onread` symbols, the
 * handle's `useUserBuffer`); if a Node upgrade moves them, the lane falls back to Node's own reads
 * silently, and this test is what says so. Real sockets on loopback.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { readInto } from '../../../gateway/wire/read-buffer.js';
import { seededRandom } from '../../../routing/table/pick.js';

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
function bytesOf(size: number, seed: number): Buffer {
  const r = seededRandom(seed);
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) out[i] = Math.floor(r() * 256);
  return out;
}

const servers: net.Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise<void>((r) => s.close(() => r()));
});

/** A server whose first accepted socket is handed to `take`; the client connected to it. */
async function accepted(take: (socket: net.Socket) => void): Promise<net.Socket> {
  const server = net.createServer(take);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const client = net.connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(client, 'connect');
  return client;
}

describe('readInto: an accepted socket reads into a buffer of the gateway', () => {
  it(`is taken on this runtime (${process.version}): every read lands in the given buffer, in order, byte for byte; the bytes the stream held first come first`, async () => {
    const payload = bytesOf(3 * 1024 * 1024 + 17, 41);
    const own = Buffer.allocUnsafe(64 * 1024);
    const got: Buffer[] = [];
    let intoOwn = 0;
    let reads = 0;
    let taken: boolean | undefined;
    let server!: net.Socket;
    const done = new Promise<void>((resolve) => {
      const client = accepted((socket) => {
        server = socket;
        // The first bytes arrive through the stream, as the listener's sniffing reads them; then they are put back.
        socket.once('data', (first: Buffer) => {
          socket.pause();
          socket.unshift(first);
          socket.on('data', (c: Buffer) => got.push(Buffer.from(c)));
          taken = readInto(
            socket,
            () => own,
            (n, buf) => {
              reads++;
              if (buf === own) intoOwn++;
              // Behind the stream's bytes, as the lane keeps them (edge/http1-lane.ts `onRead`).
              if (socket.readableLength > 0) return socket.push(Buffer.from(buf.subarray(0, n)));
              got.push(Buffer.from(buf.subarray(0, n)));
              return true;
            },
          );
          socket.resume();
        });
        socket.on('end', () => resolve());
      });
      void client.then((c) => {
        c.write(payload.subarray(0, 10));
        // The rest once the server has taken the socket (its first 'data').
        const rest = (): void => {
          if (taken === undefined) return void setImmediate(rest);
          c.end(payload.subarray(10));
        };
        rest();
      });
    });
    await done;
    expect(taken).toBe(true);
    expect(reads).toBeGreaterThan(0);
    expect(intoOwn).toBe(reads);
    expect(sha(Buffer.concat(got))).toBe(sha(payload));
    server.destroy();
  });

  it('pause() stops such a socket reading and resume() starts it again: nothing is lost or doubled', async () => {
    const payload = bytesOf(2 * 1024 * 1024, 42);
    const own = Buffer.allocUnsafe(64 * 1024);
    const got: Buffer[] = [];
    let socket!: net.Socket;
    let ended!: () => void;
    const end = new Promise<void>((r) => (ended = r));
    const client = await accepted((s) => {
      socket = s;
      expect(
        readInto(
          s,
          () => own,
          (n, buf) => {
            got.push(Buffer.from(buf.subarray(0, n)));
            // Every read pauses the socket; the next turn of the loop resumes it.
            s.pause();
            setImmediate(() => s.resume());
            return true;
          },
        ),
      ).toBe(true);
      s.on('end', ended);
      s.resume();
    });
    client.end(payload);
    await end;
    expect(sha(Buffer.concat(got))).toBe(sha(payload));
    socket.destroy();
  });

  it('leaves alone what it cannot take: a socket that reads into its own buffer already, and a TLS socket', async () => {
    const own = Buffer.allocUnsafe(1024);
    const dialled = net.connect({ host: '127.0.0.1', port: 1, onread: { buffer: own, callback: () => true } } as net.NetConnectOpts);
    dialled.on('error', () => undefined);
    expect(
      readInto(
        dialled,
        () => own,
        () => true,
      ),
    ).toBe(false);
    dialled.destroy();
    const secure = new tls.TLSSocket(new net.Socket());
    expect(
      readInto(
        secure,
        () => own,
        () => true,
      ),
    ).toBe(false);
    secure.destroy();
  });
});
