/**
 * A model's answer compressed on its way to the client (docs/edge.md#compression): the head's
 * fields edited for the coding routing/compression/policy.ts chose, and the body through node:zlib's
 * streaming compressor, which runs off the event loop. The exchange (rest/forwarded-exchange.ts)
 * writes the model's plain bytes here after everything that reads them (a bandit's tag, the
 * payload and access logs, shadow comparison): only the client sees the coding.
 *
 * An answer of known length within INPUT_BOUND (the common tensor) is held whole and compressed
 * in one pass by a compressor kept between answers (rest/compressor-pool.ts); a larger one, or one
 * of unknown length, streams: the client gets compressed bytes before the model's last, with
 * backpressure both ways (a client slower than the compressor pauses it, its output waiting for the
 * client's 'drain'; a compressor whose input is full tells the exchange to stop reading the model:
 * `write` false, then its 'drain' once it took what it was given).
 */
import { constants, createBrotliCompress, createGzip, createZstdCompress, type ZlibOptions } from 'node:zlib';
import type { Transform } from 'node:stream';
import { joinPieces } from '../wire/message-body.js';
import { CompressorPool, type CompressorKind } from './compressor-pool.js';
import { compressible, negotiate, weakEtag, type Coding, type CompressionPolicy } from '../../routing/compression/policy.js';
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
 * An answer of known length up to this is held whole, then compressed in one pass by a kept
 * compressor: no pause of the upstream socket (an epoll_ctl each way, a 'drain'), as nginx reads
 * into its buffers, and no compressor made per answer (rest/compressor-pool.ts says what that cost).
 * Streaming, the model's bytes held while the compressor works before the exchange is asked to stop
 * reading the model.
 */
const INPUT_BOUND = 2 * CHUNK;

/** The compressors of whole answers: one pool per process, its idle compressors its own. */
const kept = new CompressorPool();

/** A kept compressor's settings per policy and coding (gzip and zstd: node:zlib's brotli reset forgets its quality). */
const kinds = new WeakMap<CompressionPolicy, Partial<Record<Coding, CompressorKind>>>();

/** What compresses a whole answer of `size` bytes in `coding`. */
function wholeKind(coding: Coding, p: CompressionPolicy, size: number): CompressorKind {
  if (coding === 'br') return { key: 'br', keep: false, finish: constants.BROTLI_OPERATION_FINISH, make: () => compressor(coding, p, size) };
  let byCoding = kinds.get(p);
  if (byCoding === undefined) kinds.set(p, (byCoding = {}));
  return (byCoding[coding] ??= {
    key: `${coding}:${p.levels[coding]}:${p.gzipMemLevel ?? ''}:${p.gzipWindowBits ?? ''}`,
    keep: true,
    finish: coding === 'gzip' ? constants.Z_FINISH : constants.ZSTD_e_end,
    make: () => compressor(coding, p, -1),
  });
}

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
    if (this.to !== this.res) (this.to as EncodedAnswer).unused();
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
  const size = length === undefined ? -1 : Number(length);
  if (size >= 0 && size <= INPUT_BOUND) return new WholeEncoder(res, coding, wholeKind(coding, p, size), metrics, report);
  return new StreamingEncoder(res, coding, compressor(coding, p, size), metrics, report);
}

/**
 * An answer on its way to the client compressed: the bytes both sides counted once it is over (its
 * compressed tail written and the client's end, or cut short), told to the request's tap then. The
 * client's answer closing first (the client went, the route timed out, the model broke off) stops
 * the compressing.
 */
abstract class EncodedAnswer implements AnswerBody {
  protected identity = 0;
  protected encoded = 0;
  protected over = false;

  constructor(
    protected readonly res: RestResponse,
    private readonly coding: Coding,
    private readonly metrics: CompressionMetrics,
    /** When the request is observed: told the coding now, the bytes both sides once the answer is over. */
    private report: EncodedReport | undefined,
  ) {
    report?.answerEncoding(coding);
    res.once('close', () => {
      if (this.over) return;
      this.over = true;
      this.abandon();
      this.report?.answerEncoded(this.identity, this.encoded);
    });
  }

  abstract write(chunk: Buffer): boolean;
  abstract end(last?: Buffer): void;
  abstract once(event: 'drain', listener: () => void): this;
  /** The client's answer closed first: what compresses stops (or its output goes nowhere). */
  protected abstract abandon(): void;

  /** The answer's head could not be written (the exchange answers 502 instead): nothing was compressed, nothing is told. */
  unused(): void {
    this.report?.answerEncoding(undefined);
    this.report = undefined;
    this.over = true;
    this.abandon();
  }

  /** Compressed output, on its way to the client; false: the client is full. */
  protected send(piece: Buffer): boolean {
    this.encoded += piece.length;
    return this.res.write(piece);
  }

  /** The compressed tail is written: the client's end. */
  protected finish(): void {
    if (this.over) return;
    this.over = true;
    this.metrics.count('response', this.coding, this.identity, this.encoded);
    this.res.end();
    this.report?.answerEncoded(this.identity, this.encoded);
  }

  /** Compressing memory cannot fail but for a bug: the answer is cut rather than sent wrong. */
  protected cut(): void {
    if (this.over) return;
    this.over = true;
    this.res.destroy();
    this.report?.answerEncoded(this.identity, this.encoded);
  }
}

/**
 * An answer of known length within INPUT_BOUND: its bytes held as they come, then compressed in one
 * pass (a kept compressor, or brotli's own) once the model's answer is complete.
 */
class WholeEncoder extends EncodedAnswer {
  private held: Buffer[] = [];

  constructor(
    res: RestResponse,
    coding: Coding,
    private readonly kind: CompressorKind,
    metrics: CompressionMetrics,
    report: EncodedReport | undefined,
  ) {
    super(res, coding, metrics, report);
  }

  /** Held (its length is bounded by the answer's Content-Length): never full. */
  write(chunk: Buffer): boolean {
    this.identity += chunk.length;
    this.held.push(chunk);
    return true;
  }

  /** Never full: no 'drain' to wait for. */
  once(): this {
    return this;
  }

  end(last?: Buffer): void {
    if (last !== undefined) this.write(last);
    const held = this.held;
    this.held = [];
    if (this.over) return;
    kept.compress(
      this.kind,
      held,
      (piece) => {
        // Written whatever the client's pace: the whole answer is bounded, as a plain one is.
        if (!this.over) this.send(piece);
      },
      (ok) => (ok ? this.finish() : this.cut()),
    );
  }

  protected abandon(): void {
    this.held = [];
  }
}

/**
 * An answer too large to hold, or of unknown length, through a compressor of its own as it comes:
 * its output goes to the client as it comes.
 */
class StreamingEncoder extends EncodedAnswer {
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
    report: EncodedReport | undefined,
  ) {
    super(res, coding, metrics, report);
    z.on('data', (c: Buffer) => {
      // The client is slower than the compressor: its output waits for the client's 'drain'.
      if (!this.send(c)) {
        z.pause();
        res.once('drain', () => z.resume());
      }
    });
    z.once('end', () => this.finish());
    z.once('error', () => this.cut());
  }

  protected abandon(): void {
    this.z.destroy();
  }

  /** The model's plain bytes; false: the compressor is full ('drain' follows once it took them). */
  write(chunk: Buffer): boolean {
    this.identity += chunk.length;
    if (!this.busy) {
      this.compress(chunk);
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

  private compress(piece: Buffer): void {
    this.busy = true;
    this.z.write(piece, this.took);
  }

  /** The compressor took a piece: what came meanwhile goes as the next, or the end. */
  private readonly took = (): void => {
    this.busy = false;
    if (this.over) return;
    const held = this.held;
    if (held !== undefined) {
      this.held = undefined;
      const bytes = this.heldBytes;
      this.heldBytes = 0;
      this.compress(joinPieces(held, bytes));
      const drained = this.drained;
      this.drained = undefined;
      drained?.();
    } else if (this.ending) {
      this.ending = false;
      this.z.end();
    }
  };
}
