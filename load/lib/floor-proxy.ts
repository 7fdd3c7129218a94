/**
 * The "floor" baselines of the REST benchmark: the least a Node reverse proxy can do per request,
 * built on one upstream client, so the gateway's cost splits into what the runtime and the client
 * cost (this) and what the gateway's own work adds (routing, header rules, metrics, timeouts,
 * retries, breakers: the gateway row over this one).
 *
 * BENCH_CLIENT=undici: the gateway's own client (undici Pool `dispatch`, raw headers, WASM llhttp).
 * BENCH_CLIENT=node-http: node:http.request on a keep-alive Agent (Node's native llhttp), the other
 * client a Node proxy could use; the two rows price the parser and client hypothesis of issue 15.
 *
 * Both read the body whole (as the gateway does for small bodies), forward the client's headers
 * minus Connection, and stream the answer back with its raw headers. No routing, no limits.
 *
 * Configured by environment (the runner starts it): BENCH_UPSTREAM_PORT, BENCH_CLIENT, BENCH_PORT,
 * BENCH_HOST (default 127.0.0.1). Prints `listening <port>` once it listens.
 */
import http, { type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import { Pool, type Dispatcher } from 'undici';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');
const client = process.env.BENCH_CLIENT ?? 'undici';
if (client !== 'undici' && client !== 'node-http') throw new Error(`BENCH_CLIENT: undici or node-http, not ${client}`);

const pool = new Pool(`http://127.0.0.1:${upstreamPort}`, { connections: 64 });
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** The client's raw headers without Connection (hop-by-hop): `[name, value, …]`. */
function forwarded(raw: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.toLowerCase() !== 'connection') out.push(raw[i]!, raw[i + 1]!);
  return out;
}

function viaUndici(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  pool.dispatch(
    { method: req.method as Dispatcher.HttpMethod, path: req.url ?? '/', headers: forwarded(req.rawHeaders), body },
    {
      onConnect() {},
      onHeaders(status: number, raw: Buffer[]) {
        const headers: string[] = [];
        for (let i = 0; i < raw.length; i += 2) {
          const name = raw[i]!.toString('latin1');
          if (name.toLowerCase() !== 'connection' && name.toLowerCase() !== 'keep-alive') headers.push(name, raw[i + 1]!.toString('latin1'));
        }
        res.writeHead(status, headers);
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

function viaNodeHttp(req: IncomingMessage, res: ServerResponse, body: Buffer): void {
  const up = http.request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: forwarded(req.rawHeaders) as unknown as OutgoingHttpHeaders, agent }, (answer) => {
    const headers: string[] = [];
    const raw = answer.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) {
      const name = raw[i]!.toLowerCase();
      if (name !== 'connection' && name !== 'keep-alive') headers.push(raw[i]!, raw[i + 1]!);
    }
    res.writeHead(answer.statusCode ?? 502, headers);
    answer.on('data', (chunk: Buffer) => res.write(chunk));
    answer.on('end', () => res.end());
  });
  up.on('error', () => res.destroy());
  up.end(body);
}

const forward = client === 'undici' ? viaUndici : viaNodeHttp;
const server = http.createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => forward(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
});
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
