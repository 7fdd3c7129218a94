/**
 * The REST benchmark's lowest floor (`floor-bare`): a proxy with no HTTP stack on either side.
 * A `net` server reads each client request up to its head and Content-Length body and writes those
 * bytes, unchanged, to an idle keep-alive `net.Socket` towards the backend; the answer's bytes go
 * back to the client as they arrive, the answer ending where its Content-Length says.
 *
 * Not a usable proxy (no chunked bodies, no header rewriting, no limits, errors or timeouts): a
 * price. It does what any proxy must (two reads and two writes per request on keep-alive
 * connections) and next to nothing else, so floor-raw over this row is what `node:http`'s server
 * side costs, and this row over nginx is what the Node runtime itself costs.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM_PORT, BENCH_PORT, BENCH_HOST
 * (default 127.0.0.1). Prints `listening <port>` once it listens.
 */
import net from 'node:net';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');

/** Where a message's head ends and how long it is in all (head + Content-Length body), or -1 while the head is incomplete. */
function messageLength(b: Buffer): number {
  const end = b.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const head = b.toString('latin1', 0, end).toLowerCase();
  const at = head.indexOf('\r\ncontent-length:');
  return end + 4 + (at < 0 ? 0 : parseInt(head.slice(at + 17), 10));
}

/** One keep-alive connection to the backend, carrying one answer at a time back to `client`. */
class Upstream {
  readonly socket = net.connect(upstreamPort, '127.0.0.1');
  client: Client | undefined;
  private pending: Buffer | null = null;
  /** Bytes of the current answer still to come; -1 until its head has been read. */
  private left = -1;

  constructor() {
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => this.read(chunk));
    this.socket.on('error', () => this.client?.socket.destroy());
  }

  private read(chunk: Buffer): void {
    const b = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    if (this.left < 0) {
      const total = messageLength(b);
      if (total < 0) {
        this.pending = b;
        return;
      }
      this.left = total;
    }
    this.left -= b.length;
    const client = this.client!;
    client.socket.write(b);
    if (this.left > 0) return;
    this.left = -1;
    this.client = undefined;
    idle.push(this);
    client.next();
  }
}
const idle: Upstream[] = [];

/** A client connection: requests are forwarded one at a time, in order. */
class Client {
  private pending: Buffer | null = null;
  private busy = false;

  constructor(readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => {
      this.pending = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
      if (!this.busy) this.next();
    });
    socket.on('error', () => socket.destroy());
  }

  /** Forward the next whole request, if one has arrived. */
  next(): void {
    this.busy = false;
    const b = this.pending;
    if (b === null) return;
    const total = messageLength(b);
    if (total < 0 || b.length < total) return;
    this.pending = b.length > total ? b.subarray(total) : null;
    this.busy = true;
    const up = idle.pop() ?? new Upstream();
    up.client = this;
    up.socket.write(b.subarray(0, total));
  }
}

const server = net.createServer((socket) => new Client(socket));
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  for (const u of idle) u.socket.destroy();
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
