/**
 * The REST scenarios' `relay` target, the floor of a Node proxy: a raw TCP relay on Node. Each client
 * connection is piped to its own upstream connection and the bytes pass unparsed, both ways. No
 * HTTP at all, so it cannot route or count; it is what Node's event loop and sockets cost a
 * proxy that does nothing but move one request's bytes in and one answer's bytes out.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM_PORT, BENCH_PORT, BENCH_HOST
 * (default 127.0.0.1). Prints `listening <port>` once it listens.
 */
import net from 'node:net';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');

const server = net.createServer((client) => {
  const upstream = net.connect(upstreamPort, '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream);
  upstream.pipe(client);
  client.on('error', () => upstream.destroy());
  upstream.on('error', () => client.destroy());
  client.on('close', () => upstream.destroy());
  upstream.on('close', () => client.destroy());
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
