/**
 * The large scenario's gRPC model stand-in: a node:http2 server (h2c) that answers every unary call with the
 * request's own message, its bytes echoed as they came (a Predict request is a SeldonMessage, as its answer is),
 * `grpc-status: 0` in the trailers. Unlike lib/grpc-backend.ts (grpc-js, which decodes and encodes the tensor: most
 * of a second per 1 MiB tensor on a busy 2-core machine) it never parses a message, so the proxies' cost is what a
 * run measures.
 *
 * Configured by environment (the runner starts it): BENCH_PORT, BENCH_HOST (default 127.0.0.1). Prints
 * `listening <port>` once it listens.
 */
import http2 from 'node:http2';

// Windows of 1 MiB per stream and 16 MiB per connection (Node's default is 64 KiB): a tensor is not sent 64 KiB per round trip.
// A session may hold 128 MB, not Node's 10: a proxy that multiplexes every client's call onto one connection (haproxy's
// `http-reuse`) has 16 tensors of 1 MiB in flight both ways there, and past 10 MB Node refuses new streams
// (ENHANCE_YOUR_CALM), which that proxy's row counted as errors. A model server's own limit is its windows.
const server = http2.createServer({ settings: { initialWindowSize: 1 << 20 }, maxSessionMemory: 128 });
server.on('session', (session) => session.setLocalWindowSize(16 << 20));
server.on('stream', (stream) => {
  const pieces: Buffer[] = [];
  stream.on('data', (c: Buffer) => pieces.push(c));
  stream.on('end', () => {
    // A call the client cut (a load run's end) ended its readable side too: there is no one to answer.
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    for (const p of pieces) stream.write(p);
    stream.end();
  });
  stream.on('error', () => {});
});
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
