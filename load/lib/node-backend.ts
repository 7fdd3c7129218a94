/**
 * The REST scenarios' backend: a minimal node:http
 * server that drains the request body and answers a fixed ~100-byte JSON body with keep-alive
 * (BENCH_ANSWER_BYTES: a JSON body of that many bytes instead).
 *
 * Configured by environment: BENCH_PORT, BENCH_HOST (default 127.0.0.1); with BENCH_TLS_CERT and BENCH_TLS_KEY (PEM
 * files) it answers over TLS (node:https, ALPN http/1.1, TLS 1.2 minimum): the TLS scenario's floor of Node's TLS stack.
 * Prints `listening <port>` once it listens.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';

const SIZE = Number(process.env.BENCH_ANSWER_BYTES || 0);
const BODY = SIZE
  ? Buffer.from(`{"data":{"ndarray":[${'0.654321,'.repeat(Math.max(0, (SIZE - 40) / 9))}0]}}`.padEnd(SIZE, ' '))
  : Buffer.from('{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{"requestPath":{"model":"bench:1"}}}');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const answer = (req: IncomingMessage, res: ServerResponse): void => {
  req.resume();
  req.once('end', () => {
    res.writeHead(200, HEADERS);
    res.end(BODY);
  });
};
const { BENCH_TLS_CERT: cert, BENCH_TLS_KEY: key } = process.env;
const tls = cert && key ? { cert: readFileSync(cert), key: readFileSync(key), ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' as const } : undefined;
const server = tls ? createTlsServer({ keepAliveTimeout: 300_000, ...tls }, answer) : createServer({ keepAliveTimeout: 300_000 }, answer);
server.maxRequestsPerSocket = 0;
server.listen(Number(process.env.BENCH_PORT ?? 0), process.env.BENCH_HOST ?? '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
const stop = (): void => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
