/**
 * The TLS scenario's floor: the least a Node TLS reverse proxy does per request. node:https (ALPN
 * http/1.1, TLS 1.2 minimum) in front of undici's Pool; the body read whole, the client's headers
 * forwarded minus Connection, the answer streamed back with its raw headers. No routing, no limits:
 * the gateway's TLS rows over this one are what the gateway adds to Node's TLS stack and a client.
 *
 * Configured by environment: BENCH_UPSTREAM_PORT, BENCH_PORT, BENCH_HOST (default 127.0.0.1),
 * BENCH_TLS_CERT and BENCH_TLS_KEY (PEM files). Prints `listening <port>` once it listens.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');
const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 });

/** Raw headers (strings or undici's Buffers) without the hop's own. */
function endToEnd(raw: readonly (string | Buffer)[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!.toString('latin1');
    const lower = name.toLowerCase();
    if (lower !== 'connection' && lower !== 'keep-alive') out.push(name, raw[i + 1]!.toString('latin1'));
  }
  return out;
}

function forward(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  pool.dispatch(
    { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: endToEnd(req.rawHeaders), body },
    {
      onConnect() {},
      onHeaders(status: number, raw: readonly Buffer[]) {
        res.writeHead(status, endToEnd(raw));
        return true;
      },
      onData(chunk: Buffer) {
        res.write(chunk);
        return true;
      },
      onComplete() {
        res.end();
      },
      onError() {
        res.destroy();
      },
    },
  );
}

const server = https.createServer(
  { keepAliveTimeout: 65_000, cert: readFileSync(process.env.BENCH_TLS_CERT ?? ''), key: readFileSync(process.env.BENCH_TLS_KEY ?? ''), ALPNProtocols: ['http/1.1'], minVersion: 'TLSv1.2' },
  (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => forward(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
  },
);
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
