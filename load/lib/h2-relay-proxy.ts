/**
 * The floor of a Node gRPC proxy: a minimal node:http2 proxy, each client stream relayed to a
 * stream of one upstream HTTP/2 session, headers as they came (pseudo-headers too), DATA both ways,
 * trailers back. It routes nothing and checks nothing: what node:http2 itself costs a proxy per
 * call, on both its sides (a server stream and a client stream), for load/alloc-bench.ts and
 * grpc-bench.ts to measure the gateway's gRPC path against.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM_PORT, BENCH_PORT. Prints
 * `listening <port>` once it listens.
 */
import http2, { type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');

const upstream = http2.connect(`http://127.0.0.1:${upstreamPort}`);
upstream.on('error', () => undefined);

const server = http2.createServer();
server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => {
  stream.on('error', () => undefined);
  const up = upstream.request(headers as OutgoingHttpHeaders, { endStream: false });
  up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
  let trailers: OutgoingHttpHeaders = {};
  stream.on('data', (chunk: Buffer) => up.write(chunk));
  stream.on('end', () => up.end());
  up.on('response', (h) => {
    const { ':status': status, ...rest } = h;
    stream.respond({ ':status': status, ...rest }, { waitForTrailers: true });
  });
  up.on('trailers', (t) => (trailers = t));
  up.on('data', (chunk: Buffer) => stream.write(chunk));
  up.on('end', () => stream.end());
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
});
server.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
const stop = (): void => {
  upstream.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
