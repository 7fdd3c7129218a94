/**
 * A model's answer compressed on its way to the client (docs/edge.md#compression): the head's
 * fields edited for the coding routing/compression.ts chose, and the body through node:zlib's
 * streaming compressor, which runs off the event loop. The exchange (rest/forwarded-exchange.ts)
 * writes the model's plain bytes here after everything that reads them (a bandit's tag, the
 * payload and access logs, shadow comparison): only the client sees the coding.
 *
 * Backpressure both ways: a client slower than the compressor pauses it (its output waits for the
 * client's 'drain'), and a compressor whose input is full tells the exchange to stop reading the
 * model (`write` false, then its 'drain' once it took what it was given).
 */
import { constants, createBrotliCompress, createGzip, createZstdCompress, type ZlibOptions } from 'node:zlib';
import type { Transform } from 'node:stream';
import { compressible, negotiate, weakEtag, type Coding, type CompressionPolicy } from '../../routing/compression.js';
import type { AnswerFields } from '../edge/answer-fields.js';
import type { RestRequest, RestResponse } from '../edge/rest-exchange.js';
import type { CompressionMetrics } from '../observe/compression-metrics.js';
import type { ResponseTap } from '../observe/observed-rest.js';

/** Who is told of a compressed answer (its request's tap: the access log, the payload events). */
type EncodedReport = Pick<ResponseTap, 'answerEncoding' | 'answerEncoded'>;

/** Where an answer's body is written: the client's response, or its compressor. */
export interface AnswerBody {
  /** False: wait for 'drain'. */
  write(chunk: Buffer): boolean;
  end(last?: Buffer): void;
  once(event: 'drain', listener: () => void): unknown;
}

/** Where the exchange writes an answer: the client's response, or (a route that compresses) a `CompressingAnswer`. */
export interface AnswerOut extends AnswerBody {
  writeAnswerHead(status: number, fields: AnswerFields, reason?: string): unknown;
}

const BROTLI_WINDOW_BITS = 18;
/**
 * Output pieces of 64 KiB, not zlib's 16 KiB: a quarter of the trips through the thread pool and of
 * the writes to the client (about 5% less CPU per 100 KB answer on gzip level 6, `npm run bench -- compression`).
 */
const CHUNK = 64 * 1024;
/**
 * The model's bytes held while the compressor works before the exchange is asked to stop reading the
 * model: an answer of up to 128 KiB (the common tensor) goes in without a pause of the upstream
 * socket (an epoll_ctl each way, a 'drain'), as nginx reads into its buffers; a larger one is held to
 * this much in memory per answer.
 */
const INPUT_BOUND = 2 * CHUNK;

/** A compressor for `coding` at the policy's level (`sizeHint`: the answer's length, or -1). */
function compressor(coding: Coding, p: CompressionPolicy, sizeHint: number): Transform {
  const level = p.levels[coding];
  if (coding === 'gzip') {
    const o: ZlibOptions = { level, chunkSize: CHUNK };
    if (p.gzipMemLevel !== undefined) o.memLevel = p.gzipMemLevel;
    if (p.gzipWindowBits !== undefined) o.windowBits = p.gzipWindowBits;
    return createGzip(o);
  }
  if (coding === 'br') {
    // Envoy's window (2^18): brotli's own (2^22) would hold 4 MiB per answer in flight.
    const params: Record<number, number> = { [constants.BROTLI_PARAM_QUALITY]: level, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT, [constants.BROTLI_PARAM_LGWIN]: BROTLI_WINDOW_BITS };
    if (sizeHint >= 0) params[constants.BROTLI_PARAM_SIZE_HINT] = sizeHint;
    return createBrotliCompress({ params, chunkSize: CHUNK });
  }
  return createZstdCompress({ params: { [constants.ZSTD_c_compressionLevel]: level }, chunkSize: CHUNK });
}

/**
 * The answer of a request on a route that compresses, as its exchange writes it: chosen once, when
 * the exchange starts, so a route without compression writes to the client's response itself and
 * pays nothing here. Its head decides (`encodeAnswer`); its body then goes to the compressor, or
 * (not compressed after all) to the client's response.
 */
export class CompressingAnswer implements AnswerOut {
  private to: AnswerBody;
  private decided = false;

  constructor(
    private readonly p: CompressionPolicy,
    private readonly req: RestRequest,
    private readonly res: RestResponse,
    private readonly metrics: CompressionMetrics,
    private readonly report: EncodedReport | undefined,
  ) {
    this.to = res;
  }

  /** The head, its fields edited for the coding chosen (once: a head written again with another reason phrase is the same answer). */
  writeAnswerHead(status: number, fields: AnswerFields, reason?: string): void {
    if (!this.decided) {
      this.decided = true;
      this.to = encodeAnswer(this.p, this.req, this.res, status, fields, this.metrics, this.report);
    }
    this.res.writeAnswerHead(status, fields, reason);
  }

  /** The head could not be written (the exchange answers 502 instead): nothing is compressed, nothing told. */
  unused(): void {
    if (this.to !== this.res) (this.to as AnswerEncoder).unused();
    this.to = this.res;
  }

  write(chunk: Buffer): boolean {
    return this.to.write(chunk);
  }

  end(last?: Buffer): void {
    this.to.end(last);
  }

  once(event: 'drain', listener: () => void): this {
    this.to.once(event, listener);
    return this;
  }
}

/**
 * Decide for one answer (the policy offers codings): when it may be compressed, its fields say it
 * varies with Accept-Encoding; when the client takes one of the codings, they are edited for it
 * (Content-Encoding in place of an `identity` one, no Content-Length: it goes chunked, a strong
 * ETag made weak) and the compressor is where its body goes; otherwise the client's response.
 */
export function encodeAnswer(
  p: CompressionPolicy,
  req: RestRequest,
  res: RestResponse,
  status: number,
  fields: AnswerFields,
  metrics: CompressionMetrics,
  report: EncodedReport | undefined,
): AnswerBody {
  if (!compressible(p, req.method, status, fields)) return res;
  const coding = negotiate(req.header('accept-encoding'), p.algorithms);
  const length = fields.get('content-length');
  const h = fields.list();
  let varies = false;
  for (let i = h.length - 2; i >= 0; i -= 2) {
    const name = h[i]!.toLowerCase();
    if (name === 'vary') varies ||= /(?:^|,)\s*(?:accept-encoding|\*)\s*(?:,|$)/i.test(h[i + 1]!);
    else if (coding === null) continue;
    else if (name === 'content-length' || name === 'content-encoding') h.splice(i, 2);
    else if (name === 'etag') h[i + 1] = weakEtag(h[i + 1]!);
  }
  if (!varies) h.push('vary', 'Accept-Encoding');
  if (coding === null) return res;
  h.push('content-encoding', coding);
  return new AnswerEncoder(res, coding, compressor(coding, p, length === undefined ? -1 : Number(length)), metrics, report);
}

/**
 * The compressor as the exchange writes to it (`AnswerOut`): its output goes to the client as it
 * comes, the client's end follows the compressed tail, and the bytes both sides are counted then.
 * The client's answer closing first (the client went, the route timed out, the model broke off)
 * frees the compressor.
 */
export class AnswerEncoder implements AnswerBody {
  private identity = 0;
  private encoded = 0;
  private over = false;
  /**
   * The model's bytes reach the compressor one piece at a time, and the pieces that come while it works
   * on one go together as the next: each piece is a trip through the thread pool, and a 100 KB answer
   * read in 4 KiB pieces cost 5.3 ms of gzip level 6 against 4.5 ms whole. The first piece goes at once:
   * nothing waits for more.
   */
  private busy = false;
  private held: Buffer[] | undefined;
  private heldBytes = 0;
  /** The model's answer ended while a piece was in the compressor: its end follows the last piece. */
  private ending = false;
  /** The exchange waits to read the model again (its write was refused: `heldBytes` over the bound). */
  private drained: (() => void) | undefined;

  constructor(
    res: RestResponse,
    coding: Coding,
    private readonly z: Transform,
    metrics: CompressionMetrics,
    /** When the request is observed: told the coding now, the bytes both sides once the answer is over. */
    private report: EncodedReport | undefined,
  ) {
    report?.answerEncoding(coding);
    z.on('data', (c: Buffer) => {
      this.encoded += c.length;
      // The client is slower than the compressor: its output waits for the client's 'drain'.
      if (!res.write(c)) {
        z.pause();
        res.once('drain', () => z.resume());
      }
    });
    z.once('end', () => {
      if (this.over) return;
      this.over = true;
      metrics.count('response', coding, this.identity, this.encoded);
      res.end();
      this.report?.answerEncoded(this.identity, this.encoded);
    });
    // Compressing memory cannot fail but for a bug: the answer is cut rather than sent wrong.
    z.once('error', () => {
      if (this.over) return;
      this.over = true;
      res.destroy();
      this.report?.answerEncoded(this.identity, this.encoded);
    });
    res.once('close', () => {
      if (this.over) return;
      this.over = true;
      z.destroy();
      this.report?.answerEncoded(this.identity, this.encoded);
    });
  }

  /** The answer's head could not be written (the exchange answers 502 instead): nothing was compressed, nothing is told. */
  unused(): void {
    this.report?.answerEncoding(undefined);
    this.report = undefined;
    this.over = true;
    this.z.destroy();
  }

  /** The model's plain bytes; false: the compressor is full ('drain' follows once it took them). */
  write(chunk: Buffer): boolean {
    this.identity += chunk.length;
    if (!this.busy) {
      this.send(chunk);
      return true;
    }
    (this.held ??= []).push(chunk);
    this.heldBytes += chunk.length;
    return this.heldBytes < INPUT_BOUND;
  }

  once(event: 'drain', listener: () => void): this {
    this.drained = listener;
    return this;
  }

  /** The model's answer is complete (`last`: its last bytes): the compressed tail follows, then the client's end. */
  end(last?: Buffer): void {
    if (last !== undefined) this.write(last);
    if (this.busy) this.ending = true;
    else this.z.end();
  }

  private send(piece: Buffer): void {
    this.busy = true;
    this.z.write(piece, this.sent);
  }

  /** The compressor took a piece: what came meanwhile goes as the next, or the end. */
  private readonly sent = (): void => {
    this.busy = false;
    if (this.over) return;
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      const bytes = this.heldBytes;
      this.heldBytes = 0;
      this.send(held.length === 1 ? held[0]! : Buffer.concat(held, bytes));
      const drained = this.drained;
      this.drained = undefined;
      drained?.();
    } else if (this.ending) {
      this.ending = false;
      this.z.end();
    }
  };
}
