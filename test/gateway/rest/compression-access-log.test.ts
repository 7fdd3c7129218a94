/**
 * The access log of compressed requests and answers (docs/observability.md#access-log,
 * docs/edge.md#compression), over real sockets: a real gateway, a recording model, raw HTTP/1.1
 * clients, the lines as the log writes them.
 *
 * - a gzip body decoded for its model and a br answer: the line names each direction's coding and
 *   its bytes plain and encoded, matching what the client sent and received and what the model got
 *   and sent; `bytes_sent` is the compressed bytes the client received;
 * - an answer compressed for one direction only has that direction's fields alone;
 * - a plain route's line has none of them (JSON and text: the line ends as it always did);
 * - the text format appends the six fields only to a line with compression;
 * - a compressed answer the client leaves halfway has its line, with what was compressed and sent.
 */
import http from 'node:http';
import { brotliDecompressSync, gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { headerValue, rawRequest, startRecordingUpstream, type HeaderLine, type RawResponse, type RecordingUpstream } from '../../fixtures/recording-upstream.js';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { LogCapture } from '../../helpers/observability.js';
import { listenLocal } from '../../helpers/net.js';

const DEC = '/seldon/m/dec/api/v1.0/predictions';
const PLAIN = '/seldon/m/plain/api/v1.0/predictions';
const HALF = '/seldon/m/half/api/v1.0/predictions';

function tensor(n: number): Buffer {
  return Buffer.from(JSON.stringify({ data: { ndarray: [Array.from({ length: n }, (_, i) => Math.round(Math.cos(i) * 1e5) / 1e5)] }, meta: {} }));
}
const ANSWER = tensor(4000);
const SENT = tensor(1500);
const FIRST_HALF = ANSWER.subarray(0, Math.floor(ANSWER.length / 2));
const CODED_FIELDS = ['request_encoding', 'request_bytes_encoded', 'request_bytes_identity', 'response_encoding', 'response_bytes_identity', 'response_bytes_encoded'];

async function ask(port: number, target: string, id: string, headers: HeaderLine[], body: Buffer): Promise<RawResponse> {
  const { res, x } = await rawRequest(port, { target, headers: [['Host', 'gw'], ['Content-Type', 'application/json'], ['X-Request-Id', id], ...headers], body });
  x.socket.destroy();
  expect(res, 'an answer').not.toBeNull();
  return res!;
}

describe('the access log says what the gateway decoded and compressed', () => {
  let model: RecordingUpstream;
  let half: { port: number; close(): Promise<void> };
  /** The half-answering model's open answers: ended when the test is over. */
  const halves: http.ServerResponse[] = [];
  let json: TestGateway;
  let text: TestGateway;
  const jsonLogs = new LogCapture();
  const textLogs = new LogCapture();

  beforeAll(async () => {
    model = await startRecordingUpstream({ name: 'model', responder: () => ({ headers: [['Content-Type', 'application/json']], body: ANSWER }) });
    // A model that sends half its answer and holds the rest.
    half = await listenLocal(
      http.createServer((req, res) => {
        req.resume();
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(FIRST_HALF);
        halves.push(res);
      }),
    );
    const manifests = {
      'half.yaml': sdep('half', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-compression': '{algorithms: [gzip]}' }),
      'dec.yaml': sdep('dec', 'm', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-compression': '{algorithms: [br, gzip], decodeRequests: true}' }),
      'plain.yaml': sdep('plain', 'm', { predictors: [{ name: 'main' }] }),
    };
    const resolve = { 'dec-main.m:8000': model.port, 'plain-main.m:8000': model.port, 'half-main.m:8000': half.port };
    json = await startTestGateway({ manifests, resolve, accessSink: jsonLogs });
    text = await startTestGateway({ manifests, resolve, accessSink: textLogs, args: ['--access-log-format', 'text'] });
  });
  afterAll(async () => {
    await json?.stop();
    await text?.stop();
    for (const r of halves) r.destroy();
    await model?.close();
    await half?.close();
  });

  const lineOf = async (id: string): Promise<Record<string, unknown>> => {
    await waitFor(() => jsonLogs.text.includes(id));
    return jsonLogs.lines().find((l) => l.request_id === id)!;
  };

  it('a gzip body decoded and a br answer: each direction its coding and its bytes both sides', async () => {
    const encoded = gzipSync(SENT);
    const res = await ask(
      json.port,
      DEC,
      'both-1',
      [
        ['Content-Encoding', 'gzip'],
        ['Accept-Encoding', 'br'],
      ],
      encoded,
    );
    expect(res.status).toBe(200);
    expect(headerValue(res.headers, 'content-encoding')).toBe('br');
    expect(brotliDecompressSync(res.body).equals(ANSWER)).toBe(true);
    expect(model.requests.at(-1)!.body.equals(SENT)).toBe(true);
    const line = await lineOf('both-1');
    expect(line).toMatchObject({
      response_code: 200,
      bytes_received: encoded.length,
      bytes_sent: res.body.length,
      request_encoding: 'gzip',
      request_bytes_encoded: encoded.length,
      request_bytes_identity: SENT.length,
      response_encoding: 'br',
      response_bytes_identity: ANSWER.length,
      response_bytes_encoded: res.body.length,
    });
    expect(res.body.length).toBeLessThan(ANSWER.length / 2);
  });

  it('an answer compressed, its request plain: the response fields alone', async () => {
    const res = await ask(json.port, DEC, 'answer-1', [['Accept-Encoding', 'gzip']], SENT);
    expect(headerValue(res.headers, 'content-encoding')).toBe('gzip');
    const line = await lineOf('answer-1');
    expect(line).toMatchObject({
      bytes_received: SENT.length,
      bytes_sent: res.body.length,
      response_encoding: 'gzip',
      response_bytes_identity: ANSWER.length,
      response_bytes_encoded: res.body.length,
    });
    for (const f of CODED_FIELDS.slice(0, 3)) expect(line, f).not.toHaveProperty(f);
  });

  it("a plain route's line, and a compressing route's answer the client did not ask compressed, have none of the fields", async () => {
    for (const [target, id] of [
      [PLAIN, 'plain-1'],
      [DEC, 'asked-nothing-1'],
    ] as const) {
      const res = await ask(json.port, target, id, [], SENT);
      expect(res.body.equals(ANSWER)).toBe(true);
      const line = await lineOf(id);
      expect(line).toMatchObject({ bytes_received: SENT.length, bytes_sent: ANSWER.length });
      for (const f of CODED_FIELDS) expect(line, `${id} ${f}`).not.toHaveProperty(f);
      // The line ends with the field it always ended with.
      expect(
        jsonLogs.text
          .split('\n')
          .find((l) => l.includes(id))!
          .endsWith('"fallback":null}'),
      ).toBe(true);
    }
  });

  it('text format: six more fields on a line with compression, none on a plain one', async () => {
    const encoded = gzipSync(SENT);
    const res = await ask(
      text.port,
      DEC,
      'text-both',
      [
        ['Content-Encoding', 'gzip'],
        ['Accept-Encoding', 'br'],
      ],
      encoded,
    );
    expect(brotliDecompressSync(res.body).equals(ANSWER)).toBe(true);
    await ask(text.port, PLAIN, 'text-plain', [], SENT);
    await waitFor(() => textLogs.text.includes('text-both') && textLogs.text.includes('text-plain'));
    const lines = textLogs.text.split('\n');
    const both = lines.find((l) => l.includes('text-both'))!;
    const m = / - (\d+) (\d+) .* (\d+) "([^"]*)" "gzip" (\d+) (\d+) "br" (\d+) (\d+)$/.exec(both);
    expect(m, both).not.toBeNull();
    const [, rx, tx, , fallback, reqEncoded, reqIdentity, resIdentity, resEncoded] = m!;
    expect(fallback).toBe('-');
    expect([rx, tx].map(Number)).toEqual([encoded.length, res.body.length]);
    expect([reqEncoded, reqIdentity, resIdentity, resEncoded].map(Number)).toEqual([encoded.length, SENT.length, ANSWER.length, res.body.length]);
    // A plain line ends at FALLBACK, as it always did.
    expect(lines.find((l) => l.includes('text-plain'))!).toMatch(/ \d+ "-"$/);
  });

  it('a compressed answer the client leaves halfway: its line, 499, with what was compressed and what reached the client', async () => {
    const req = http.request({ host: '127.0.0.1', port: json.port, path: HALF, method: 'POST', headers: { 'accept-encoding': 'gzip', 'content-type': 'application/json', 'x-request-id': 'left-1' } });
    req.on('error', () => undefined);
    req.end('{}');
    const res = await new Promise<http.IncomingMessage>((resolve) => req.once('response', resolve));
    expect(res.headers['content-encoding']).toBe('gzip');
    // Compressed bytes of the first half arrive; the client goes.
    await new Promise((resolve) => res.once('data', resolve));
    req.destroy();
    const line = await lineOf('left-1');
    expect(line).toMatchObject({ response_code: 499, response_encoding: 'gzip', response_bytes_identity: FIRST_HALF.length });
    expect(line.bytes_sent).toBe(line.response_bytes_encoded);
    expect(line.bytes_sent).toBeGreaterThan(0);
    expect(line.bytes_sent).toBeLessThan(FIRST_HALF.length);
  });
});
