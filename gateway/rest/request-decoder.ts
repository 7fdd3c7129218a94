/**
 * A request body decoded for a model that cannot read its coding (`decodeRequests`,
 * docs/edge.md#compression): read whole, then decoded by node:zlib off the event loop, its
 * decoded size bounded by --max-body (a compression bomb stops at the bound, it is never
 * inflated whole). Nothing reaches the model before the whole body has decoded: a body corrupt or
 * too large at its end has reached nobody.
 */
import { brotliDecompress, gunzip, inflate, zstdDecompress, type InputType } from 'node:zlib';
import { requestCoding, type RequestCoding } from '../../routing/compression/policy.js';
import type { ExchangeDeps } from './exchange-deps.js';
import type { UpstreamFields } from '../edge/upstream-fields.js';
import type { GatewayReason } from '../edge/errors.js';
import type { RestRequest } from '../edge/rest-exchange.js';
import { readSmallBody } from '../edge/small-body.js';
import { isWhole } from '../wire/message-body.js';

/** The body did not decode: not in its coding (400), or larger than the bound (413). */
export interface DecodeRefusal {
  readonly status: 400 | 413;
  readonly reason: GatewayReason;
  readonly info: string;
}

type Decoder = (buf: InputType, options: { maxOutputLength: number }, cb: (err: Error | null, out: Buffer) => void) => void;

const DECODERS: Readonly<Record<RequestCoding, Decoder>> = { gzip: gunzip, br: brotliDecompress, zstd: zstdDecompress, deflate: inflate };

/** Largest buffer node:zlib may be asked for (the bound when --max-body is 0, no limit). */
const NO_LIMIT = 2 ** 31 - 1;

/** Decode `body`, at most `limit` bytes decoded (0: no limit but the largest buffer). */
export function decodeBody(coding: RequestCoding, body: Buffer, limit: number, done: (plain: Buffer | null, refusal: DecodeRefusal | null) => void): void {
  // No body at all: nothing to decode (its Content-Encoding goes all the same).
  if (body.length === 0) return done(body, null);
  DECODERS[coding](body, { maxOutputLength: limit > 0 ? limit : NO_LIMIT }, (err, out) => {
    if (err === null) done(out, null);
    else if ((err as Error & { code?: string }).code === 'ERR_BUFFER_TOO_LARGE')
      done(null, { status: 413, reason: 'PAYLOAD_TOO_LARGE', info: `the request body is larger than ${limit} bytes once decoded (${coding})` });
    else done(null, { status: 400, reason: 'BAD_REQUEST', info: `the request body is not valid ${coding}` });
  });
}

/** What the exchange is told once the body has decoded (`plain`, from `encodedBytes` in `coding`) or has not (`refusal`). */
export interface DecodeOwner {
  decodedBody(plain: Buffer | null, refusal: DecodeRefusal | null, coding: RequestCoding, encodedBytes: number): void;
}

/**
 * When `req`'s body is in a coding the gateway decodes: read it whole (at most --max-body bytes),
 * decode it, drop Content-Encoding from the fields to the model (`fields`: the upstream client
 * writes the decoded length), count it, and tell `owner`; true. False: it goes as it came (no
 * coding, one the gateway does not decode, or a feedback too large to have been read for its token).
 */
export function decodesFirst(
  req: RestRequest,
  read: { readonly body: Buffer | null | undefined; readonly bodyHead: Buffer[] | undefined },
  fields: UpstreamFields,
  deps: Pick<ExchangeDeps, 'maxBodyBytes' | 'metrics'>,
  owner: DecodeOwner,
): boolean {
  const coding = requestCoding(req.header('content-encoding'));
  if (coding === null || coding === undefined || read.bodyHead !== undefined) return false;
  const limit = deps.maxBodyBytes ?? 0;
  const decode = (encoded: Buffer): void =>
    decodeBody(coding, encoded, limit, (plain, refusal) => {
      if (plain !== null) {
        dropContentEncoding(fields.list());
        deps.metrics.compression.count('request', coding, plain.length, encoded.length);
      }
      owner.decodedBody(plain, refusal, coding, encoded.length);
    });
  // A feedback's body read already (for its token), or the body the lane read whole.
  const body = read.body !== undefined ? read.body : req.body;
  if (isWhole(body)) decode(body ?? Buffer.alloc(0));
  else
    readSmallBody(body, limit > 0 ? limit : Number.MAX_SAFE_INTEGER, (whole) => {
      if (whole !== null) decode(whole);
      else owner.decodedBody(null, { status: 413, reason: 'PAYLOAD_TOO_LARGE', info: `the request body is larger than ${limit} bytes` }, coding, 0);
    });
  return true;
}

/** The fields to the model without Content-Encoding. */
export function dropContentEncoding(fields: string[]): void {
  for (let i = fields.length - 2; i >= 0; i -= 2) if (fields[i]!.toLowerCase() === 'content-encoding') fields.splice(i, 2);
}
