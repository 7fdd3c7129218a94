/**
 * A large answer being compressed does not hold up other requests' answers
 * (docs/edge.md#compression): node:zlib compresses off the event loop, a piece at a time, with
 * backpressure both ways, so while one client receives a 10 MB JSON answer gzip-compressed, other
 * clients' small requests are answered all along.
 *
 * Real sockets: a model that answers 10 MB of JSON, another that answers small ones, a real
 * gateway with --compress gzip, node:http clients. The order of events is what is asserted (no
 * clock). The large model sends its answer a megabyte at a time, each only once the client has
 * received (and decoded) all of the megabyte before the one it sent last: the answer can only go
 * on if the gateway compresses it as it comes, a piece at a time. Small answers must complete all along, while the
 * model is at many different megabytes of its answer; and the large answer decodes to the model's
 * bytes exactly. A gateway that compressed the whole answer at once (holding the event loop, or
 * before sending any of it) never lets the model past its first megabyte, and fails.
 */
import http from 'node:http';
import { once } from 'node:events';
import { createGunzip, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { listenLocal } from '../../helpers/net.js';
import { tensor } from '../../../load/lib/http.js';

const LARGE = '/seldon/m/large/api/v1.0/predictions';
const SMALL = '/seldon/m/small/api/v1.0/predictions';

const BIG = tensor(10 * 1024 * 1024);
const LITTLE = tensor(2000);
const PIECE = 1024 * 1024;
const PIECES = Math.ceil(BIG.length / PIECE);
/** Small answers that must complete while the large one streams (two clients, one request at a time each)… */
const AT_LEAST = 10;
/** …at this many different megabytes of the large answer. */
const SPREAD = 4;
/** Small requests after which a large answer that has not moved on is a failure, not a wait. */
const GIVE_UP = 2000;

/** POST to the gateway, asking for gzip; the answer's body (as received) once it has ended. */
async function post(port: number, path: string, agent: http.Agent, onData?: (chunk: Buffer) => void): Promise<{ headers: http.IncomingHttpHeaders; body: Buffer }> {
  const req = http.request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json' } });
  req.end('{}');
  const [res] = (await once(req, 'response')) as [http.IncomingMessage];
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => {
    chunks.push(c);
    onData?.(c);
  });
  await once(res, 'end');
  return { headers: res.headers, body: Buffer.concat(chunks) };
}

describe('a large answer compressing leaves other answers flowing', () => {
  let large: { port: number; close(): Promise<void> };
  let small: { port: number; close(): Promise<void> };
  let gw: TestGateway;
  /** The large answer's progress: megabytes the model has sent, the model's bytes the client has received (decoded as they come). */
  let sentPieces = 0;
  let decodedBytes = 0;
  /** The model's next megabyte, waiting for the client to have decoded `until` bytes. */
  let waiting: { until: number; go: () => void } | undefined;
  const progressed = (): void => {
    const w = waiting;
    if (w !== undefined && decodedBytes >= w.until) {
      waiting = undefined;
      w.go();
    }
  };

  beforeAll(async () => {
    large = await listenLocal(
      http.createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': BIG.length });
        const next = (): void => {
          const piece = BIG.subarray(sentPieces * PIECE, (sentPieces + 1) * PIECE);
          sentPieces++;
          if (sentPieces === PIECES) return void res.end(piece);
          res.write(piece);
          // One megabyte ahead of the client: the compressor has more input than it keeps back.
          waiting = { until: (sentPieces - 1) * PIECE, go: next };
          progressed();
        };
        next();
      }),
    );
    small = await listenLocal(
      http.createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': LITTLE.length });
        res.end(LITTLE);
      }),
    );
    gw = await startTestGateway({
      manifests: {
        'large.yaml': sdep('large', 'm', { predictors: [{ name: 'main' }] }),
        'small.yaml': sdep('small', 'm', { predictors: [{ name: 'main' }] }),
      },
      resolve: { 'large-main.m:8000': large.port, 'small-main.m:8000': small.port },
      args: ['--compress', 'gzip'],
    });
  });
  afterAll(async () => {
    await gw?.stop();
    await large?.close();
    await small?.close();
  });

  it('small answers complete all along while a 10 MB answer is compressed a piece at a time', async () => {
    const agents = [0, 1, 2].map(() => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    try {
      let largeDone = false;
      const decoder = createGunzip();
      decoder.on('data', (c: Buffer) => {
        decodedBytes += c.length;
        progressed();
      });
      const largeAnswer = post(gw.port, LARGE, agents[0]!, (c) => decoder.write(c)).finally(() => (largeDone = true));
      /** For each small answer completed, the megabyte the large model was at. */
      const smallsAt: number[] = [];
      const smallClient = async (agent: http.Agent): Promise<void> => {
        while (!largeDone && smallsAt.length < GIVE_UP) {
          const r = await post(gw.port, SMALL, agent);
          expect(gunzipSync(r.body).equals(LITTLE)).toBe(true);
          if (!largeDone) smallsAt.push(sentPieces);
        }
      };
      await Promise.all([smallClient(agents[1]!), smallClient(agents[2]!)]);
      expect(sentPieces, `the large model got to megabyte ${sentPieces} of ${PIECES} while ${smallsAt.length} small answers completed`).toBe(PIECES);
      const { headers, body } = await largeAnswer;
      expect(headers['content-encoding']).toBe('gzip');
      expect(gunzipSync(body).equals(BIG), "the large answer decodes to the model's bytes exactly").toBe(true);
      // Small answers completed while the model was still in the middle of its answer, at many of its megabytes.
      const during = smallsAt.filter((p) => p < PIECES);
      expect(during.length, smallsAt.join(' ')).toBeGreaterThanOrEqual(AT_LEAST);
      expect(new Set(during).size, smallsAt.join(' ')).toBeGreaterThanOrEqual(SPREAD);
    } finally {
      for (const a of agents) a.destroy();
    }
  });
});
