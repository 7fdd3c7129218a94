/**
 * Loaded into a benchmark gateway by `translate-route --in-place <what>` (node's `--import`, which its workers
 * inherit), never by the gateway itself: the protocol translation's two calls, the request's and the answer's, are
 * replaced, so that the route around them can be measured with something else in their place.
 *
 * - `parse-write` (TRANSLATE_IN_PLACE): each body is parsed once and the translation's own output for it written
 *   once, the yardstick of `npm run bench -- translate` (`JSON.parse` and `JSON.stringify`; protobufjs' decode and
 *   encode, as @grpc/grpc-js's serializers run them), in the translation's place.
 * - `hold`: each body passes as it came: read whole, counted, logged and said translated, never parsed.
 *
 * The output written is the translation's of the first requests, translated for real until one answer came back
 * (the scenario sends the same bodies every time). Only a Seldon client's requests to a v2 model are replaced.
 */
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import process from 'node:process';
import { URL, fileURLToPath } from 'node:url';
import { GrpcTranslation } from '../../dist/gateway/grpc/grpc-translation.js';
import { RestTranslation } from '../../dist/gateway/rest/rest-translation.js';
import { MESSAGE_HEAD, lengthPrefixed } from '../../dist/gateway/wire/grpc-message.js';

const WHAT = process.env.TRANSLATE_IN_PLACE;
if (WHAT !== 'parse-write' && WHAT !== 'hold') throw new Error(`TRANSLATE_IN_PLACE is parse-write or hold, not ${String(WHAT)}`);

const require = createRequire(import.meta.url);
const protoLoader = require('@grpc/proto-loader');
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], {
  includeDirs: [fileURLToPath(new URL('../../test/protos', import.meta.url))],
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: false,
});
const predict = defs['seldon.protos.Seldon'].Predict;
const infer = defs['inference.GRPCInferenceService'].ModelInfer;

/** A REST body, either way: JSON. */
const json = { parse: (b) => JSON.parse(b.toString()), write: (doc) => Buffer.from(JSON.stringify(doc)), read: (out) => JSON.parse(out.toString()) };
/** What goes on in the translation's place, per transport: the output documents, once known, and how a body is parsed and written. */
const ways = {
  rest: { request: json, answer: json },
  grpc: {
    request: {
      parse: (b) => predict.requestDeserialize(b.subarray(MESSAGE_HEAD)),
      write: (doc) => lengthPrefixed(infer.requestSerialize(doc)),
      read: (out) => infer.requestDeserialize(out.subarray(MESSAGE_HEAD)),
    },
    answer: {
      parse: (b) => infer.responseDeserialize(b.subarray(MESSAGE_HEAD)),
      write: (doc) => lengthPrefixed(predict.responseSerialize(doc)),
      read: (out) => predict.responseDeserialize(out.subarray(MESSAGE_HEAD)),
    },
  },
};
const docs = { rest: { request: undefined, answer: undefined }, grpc: { request: undefined, answer: undefined } };

/** `proto.request` and `proto.answer` replaced; `answerBody`: which of the answer's arguments is its body. */
function replace(proto, transport, answerBody) {
  const realRequest = proto.request;
  const realAnswer = proto.answer;
  const known = docs[transport];
  const way = ways[transport];
  proto.request = function (...args) {
    if (this.to !== 'v2') return realRequest.apply(this, args);
    if (known.request === undefined || known.answer === undefined) {
      const out = realRequest.apply(this, args);
      known.request = WHAT === 'parse-write' ? way.request.read(out) : true;
      return out;
    }
    this.inPlace = true;
    const b = args[0] ?? Buffer.alloc(0);
    if (WHAT === 'hold') return b;
    way.request.parse(b);
    return way.request.write(known.request);
  };
  proto.answer = function (...args) {
    if (this.inPlace !== true) {
      const out = realAnswer.apply(this, args);
      if (this.to === 'v2') known.answer = WHAT === 'parse-write' ? way.answer.read(out) : true;
      return out;
    }
    const b = args[answerBody];
    if (WHAT === 'hold') return b;
    way.answer.parse(b);
    return way.answer.write(known.answer);
  };
}

// REST: request(body), answer(status, body); gRPC: request(whole), answer(whole).
replace(RestTranslation.prototype, 'rest', 1);
replace(GrpcTranslation.prototype, 'grpc', 0);
