/**
 * A model server of fixed concurrency, a child script of the flow scenario: at most
 * BENCH_CONCURRENCY requests are served at once, each for BENCH_SERVICE_MS; the rest wait in a
 * FIFO the client cannot see, as requests wait in gunicorn's listen backlog in front of the Seldon
 * Python wrapper. It never learns that a client left: a request whose client has gone is still
 * served for its whole service time (its answer goes nowhere), as a real model would.
 *
 * GET /__stats (outside the queue) answers {served, queued, active, maxQueued, idleMs, idleGaps}:
 * idleGaps counts the times a freed slot found nothing waiting and was later taken again, idleMs
 * their total length (the proxy's turnaround between an answer and the next request, under overload). A line on stdin
 * `slow <factor>` multiplies the service time from then on (the adaptive scenario's slowdown);
 * `flush` drops every queued request with its connection, as a restart of the pod would (between
 * runs, so a run does not inherit the minutes of backlog an unprotected run leaves).
 * Configured by environment: BENCH_PORT (default 0), BENCH_CONCURRENCY (4), BENCH_SERVICE_MS (50).
 * Prints `listening <port>` once it listens; exits when stdin closes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';

const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 4);
const serviceMs = Number(process.env.BENCH_SERVICE_MS ?? 50);
let factor = 1;
const BODY = Buffer.from('{"data":{"names":["t:0","t:1"],"ndarray":[[0.1,0.9]]},"meta":{"requestPath":{"model":"fixed-concurrency:1"}}}');
const HEADERS = { 'content-type': 'application/json', 'content-length': String(BODY.length) };

const waiting: ServerResponse[] = [];
let active = 0;
let served = 0;
let maxQueued = 0;
/** Slots left idle: when each freed slot found nothing waiting, and the total and count of the idle gaps that ended. */
const idleSince: number[] = [];
let idleMs = 0;
let idleGaps = 0;

function next(): void {
  while (active < concurrency && waiting.length > 0) {
    const res = waiting.shift()!;
    const since = idleSince.pop();
    if (since !== undefined) {
      idleMs += performance.now() - since;
      idleGaps++;
    }
    active++;
    setTimeout(() => {
      active--;
      served++;
      if (waiting.length === 0) idleSince.push(performance.now());
      // Written whether or not the client is still there: the model cannot tell.
      if (!res.destroyed) {
        res.writeHead(200, HEADERS);
        res.end(BODY);
      }
      next();
    }, serviceMs * factor);
  }
}

const server = createServer({ keepAliveTimeout: 300_000, requestTimeout: 0 }, (req: IncomingMessage, res: ServerResponse) => {
  if (req.url === '/__stats') {
    req.resume();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ served, queued: waiting.length, active, maxQueued, idleMs, idleGaps }));
    return;
  }
  req.resume();
  req.once('end', () => {
    waiting.push(res);
    maxQueued = Math.max(maxQueued, waiting.length);
    next();
  });
});
server.maxRequestsPerSocket = 0;
server.listen(Number(process.env.BENCH_PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
});
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const m = /^slow (\d+(?:\.\d+)?)$/.exec(line.trim());
    if (m) factor = Number(m[1]);
    if (line.trim() === 'flush') for (const res of waiting.splice(0)) res.destroy();
  })
  .on('close', () => process.exit(0));
process.once('SIGTERM', () => process.exit(0));
