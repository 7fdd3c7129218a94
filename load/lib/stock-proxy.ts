/**
 * The "stock" baseline of the REST benchmark: a static reverse proxy made the way the Fastify
 * docs show it (fastify + @fastify/http-proxy, defaults, no logger), forwarding every path to one
 * upstream. Not the gateway: no routing table, no headers rules, no metrics.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM (http://127.0.0.1:<port>),
 * BENCH_PORT, BENCH_HOST (default 127.0.0.1). Prints `listening <port>` once it listens.
 */
import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const upstream = process.env.BENCH_UPSTREAM;
if (!upstream) throw new Error('BENCH_UPSTREAM is required');
const app = Fastify({ logger: false });
await app.register(proxy, { upstream, http2: false });
await app.listen({ host: process.env.BENCH_HOST ?? '127.0.0.1', port: Number(process.env.BENCH_PORT ?? 0) });
const address = app.server.address();
process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
const stop = (): void => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
