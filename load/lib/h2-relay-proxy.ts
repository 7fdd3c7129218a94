/**
 * The large scenario's `h2relay` target, the floor of a Node proxy that must speak HTTP/2: the least a proxy on
 * node:http2 does, no routing, no counting, no limits. The raw TCP relay (lib/relay-proxy.ts) is no floor for a
 * proxy that must frame HTTP/2; this one parses and writes the frames as the gateway must, so the gateway's ratio
 * to it is what the gateway itself adds.
 *
 * - BENCH_UPSTREAM_PROTOCOL=h1 (REST over h2c to an HTTP/1.1 model): each stream becomes an `http.request` on a
 *   keep-alive Agent, the request body piped to it, the answer's status, headers and body piped back.
 * - BENCH_UPSTREAM_PROTOCOL=h2 (gRPC over h2c): one `http2.connect` session to the model shared by every stream (as
 *   the gateway's pool does at 16 streams), each stream piped both ways, the model's trailers passed on.
 *
 * The same HTTP/2 settings as the gateway's (gateway/wire/h2-settings.ts: 256 KiB stream windows, 16 MiB connection
 * windows, 128 MB session memory), both sides, so that only the code differs. Configured by environment (the runner
 * starts it): BENCH_UPSTREAM_PORT, BENCH_UPSTREAM_PROTOCOL (h1 or h2), BENCH_UPSTREAM_SESSIONS (gRPC: sessions to the
 * model, default 1), BENCH_PORT, BENCH_HOST (default 127.0.0.1).
 * Prints `listening <port>` once it listens.
 */
import http from 'node:http';
import http2 from 'node:http2';

const upstreamPort = Number(process.env.BENCH_UPSTREAM_PORT);
if (!upstreamPort) throw new Error('BENCH_UPSTREAM_PORT is required');
const protocol = process.env.BENCH_UPSTREAM_PROTOCOL ?? 'h1';
if (protocol !== 'h1' && protocol !== 'h2') throw new Error('BENCH_UPSTREAM_PROTOCOL is h1 or h2');

const STREAM_WINDOW = 256 * 1024;
const CONNECTION_WINDOW = 16 << 20;
const settings = { enablePush: false, initialWindowSize: STREAM_WINDOW };
const { HTTP2_HEADER_STATUS } = http2.constants;
/** Headers HTTP/2 forbids (RFC 9113 §8.2.2) that an HTTP/1.1 answer carries. */
const HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity });

/** Sessions to the model, streams taken round the ring (BENCH_UPSTREAM_SESSIONS, default 1: the gateway's pool at 16 streams). */
const upstreams: (http2.ClientHttp2Session | null)[] = Array.from({ length: Number(process.env.BENCH_UPSTREAM_SESSIONS ?? 1) || 1 }, () => null);
let turn = 0;
const session = (): http2.ClientHttp2Session => {
  const i = turn++ % upstreams.length;
  const open = upstreams[i];
  if (open && !open.closed && !open.destroyed) return open;
  const s = http2.connect(`http://127.0.0.1:${upstreamPort}`, { settings, maxSessionMemory: 128 });
  s.on('connect', () => s.setLocalWindowSize(CONNECTION_WINDOW));
  s.on('error', () => {});
  s.on('close', () => {
    if (upstreams[i] === s) upstreams[i] = null;
  });
  upstreams[i] = s;
  return s;
};

const toH1 = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (k[0] !== ':') out[k] = v;
  out.host = headers[':authority'];
  const req = http.request({ agent, host: '127.0.0.1', port: upstreamPort, method: headers[':method'], path: headers[':path'], headers: out }, (res) => {
    const back: http2.OutgoingHttpHeaders = { [HTTP2_HEADER_STATUS]: res.statusCode ?? 502 };
    for (const [k, v] of Object.entries(res.headers)) if (!HOP.has(k)) back[k] = v;
    if (stream.destroyed) return res.resume();
    stream.respond(back);
    res.pipe(stream);
  });
  req.on('error', () => stream.destroy());
  stream.on('error', () => req.destroy());
  stream.pipe(req);
};

const toH2 = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
  const out: http2.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (k !== ':scheme' && k !== ':authority') out[k] = v;
  const up = session().request(out);
  let trailers: http2.OutgoingHttpHeaders = {};
  up.on('response', (h) => {
    if (stream.destroyed) return up.close();
    stream.respond(h, { waitForTrailers: true });
    up.pipe(stream);
  });
  up.on('trailers', (t) => (trailers = t));
  stream.on('wantTrailers', () => stream.sendTrailers(trailers));
  up.on('error', () => stream.destroy());
  stream.on('error', () => up.destroy());
  stream.on('close', () => up.destroy());
  stream.pipe(up);
};

const server = http2.createServer({ settings: { ...settings, maxConcurrentStreams: 128 }, maxSessionMemory: 128 });
server.on('session', (s) => s.setLocalWindowSize(CONNECTION_WINDOW));
server.on('stream', protocol === 'h1' ? toH1 : toH2);
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
