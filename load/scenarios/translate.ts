/**
 * Protocol translation's codec CPU (not a test): per request, the request translated and the model's
 * answer translated back, in-process, exactly as the proxies call them (REST: the codecs of
 * rest/rest-translation.ts; gRPC: `GrpcTranslation` of grpc/grpc-translation.ts), beside the
 * yardstick the target is stated against: parsing each body that comes in once and writing each body
 * that goes out once (REST: `JSON.parse` of the text and `JSON.stringify` to a Buffer; gRPC: the
 * protobufjs decode and encode @grpc/grpc-js servers pay, through @grpc/proto-loader's serializers).
 * Four ways: a Seldon client → v2 model and a v2 client → Seldon model, over REST and over gRPC; FP32
 * tensors of 1×4, 100×100 and 1×150,528, seeded. The untranslated call's codec cost is zero: the
 * gateway streams its bytes unparsed (its route CPU is the `floor`, `large` and `grpc` scenarios').
 *
 * CPU time (process.cpuUsage), translated and yardstick interleaved round by round and the ratio taken
 * per round (median, and each round's), so a busy machine moves both alike; µs figures are each side's best
 * round. Each REST way is also split by direction (`… request`, `… answer`): each against its own body's
 * parse and write, where the target is stated.
 *
 *   npm run bench -- translate [--rounds N] [--only <substring of a row's name>]
 */
import { join } from 'node:path';
import * as protoLoader from '@grpc/proto-loader';
import type { TranslatePolicy } from '../../routing/policies/protocol.js';
import { seededRandom } from '../../routing/table/pick.js';
import { GrpcTranslation } from '../../gateway/grpc/grpc-translation.js';
import { lengthPrefixed } from '../../gateway/wire/grpc-message.js';
import { seldonRequestToV2, v2AnswerToSeldon } from '../../gateway/translate/seldon-client.js';
import { seldonAnswerToV2, v2RequestToSeldon } from '../../gateway/translate/v2-client.js';
import { ROOT } from '../lib/children.js';
import { median, table } from '../lib/report.js';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] ?? 3) || 3;
const ONLY = args.includes('--only') ? args[args.indexOf('--only') + 1]! : '';
const random = seededRandom(20261127);

type Msg = Record<string, unknown>;
interface Codec {
  serialize(m: Msg): Buffer;
  deserialize(b: Buffer): Msg;
}
const defs = protoLoader.loadSync(['seldon.proto', 'inference.proto'], { includeDirs: [join(ROOT, 'test', 'protos')], keepCase: true, longs: String, enums: String, defaults: false, oneofs: false });
const method = (service: string, name: string): protoLoader.MethodDefinition<Msg, Msg> => (defs[service] as unknown as Record<string, protoLoader.MethodDefinition<Msg, Msg>>)[name]!;
const predict = method('seldon.protos.Seldon', 'Predict');
const infer = method('inference.GRPCInferenceService', 'ModelInfer');
const SELDON_MESSAGE: Codec = { serialize: predict.requestSerialize, deserialize: predict.requestDeserialize };
const INFER_REQUEST: Codec = { serialize: infer.requestSerialize, deserialize: infer.requestDeserialize };
const INFER_RESPONSE: Codec = { serialize: infer.responseSerialize, deserialize: infer.responseDeserialize };

const policy = (speaks: 'seldon' | 'v2', datatype: 'FP32' | null): TranslatePolicy => ({
  speaks,
  accept: [speaks === 'v2' ? 'seldon' : 'v2'],
  modelName: 'm',
  modelVersion: null,
  datatype,
  names: null,
  text: '',
});

/** One way of one size: what runs translated, and its yardstick (parse what comes in, write what goes out). */
interface Row {
  readonly name: string;
  readonly bytes: string;
  readonly iterations: number;
  readonly translate: () => void;
  readonly yardstick: () => void;
}

/** `in` parsed once and `out` (as the translation writes it) written once, JSON. */
function jsonYardstick(inBody: Buffer, outBody: Buffer): () => void {
  const outDoc = JSON.parse(outBody.toString()) as unknown;
  return () => {
    JSON.parse(inBody.toString());
    Buffer.from(JSON.stringify(outDoc));
  };
}

/** Likewise in protobuf, as @grpc/grpc-js's serializers do it (the 5-byte frame aside on both sides). */
function protoYardstick(inCodec: Codec, inBody: Buffer, outCodec: Codec, outBody: Buffer): () => void {
  const inMsg = inBody.subarray(5);
  const outMsg = outCodec.deserialize(outBody.subarray(5));
  return () => {
    inCodec.deserialize(inMsg);
    outCodec.serialize(outMsg);
  };
}

/**
 * One REST way as three rows: both bodies (the request translated and the answer back), the request alone and the
 * answer alone, each beside its own yardstick (what comes in parsed once, what goes out written once).
 */
function restRows(way: string, iterations: number, request: Buffer, toModel: Buffer, answer: Buffer, toClient: Buffer, req: () => unknown, ans: () => unknown): Row[] {
  const reqYard = jsonYardstick(request, toModel);
  const ansYard = jsonYardstick(answer, toClient);
  const bytes = `${request.length} / ${answer.length}`;
  return [
    {
      name: way,
      bytes,
      iterations,
      translate: () => {
        req();
        ans();
      },
      yardstick: () => {
        reqYard();
        ansYard();
      },
    },
    { name: `${way} request`, bytes: `${request.length} -> ${toModel.length}`, iterations, translate: req, yardstick: reqYard },
    { name: `${way} answer`, bytes: `${answer.length} -> ${toClient.length}`, iterations, translate: ans, yardstick: ansYard },
  ];
}

function rows(rowsN: number, cols: number, iterations: number): Row[] {
  const n = rowsN * cols;
  // On a grid of 1e-4, as the route scenario's (and an image's pixels / 255): a few whole numbers among them, which a
  // float answer writes `1.0` (a writer that formatted every element for them was not seen with fractions alone).
  const values = Array.from({ length: n }, () => Math.fround(Math.round(random() * 1e5) / 1e4 - 5));
  const nested = Array.from({ length: rowsN }, (_, r) => values.slice(r * cols, (r + 1) * cols));
  const shape = [rowsN, cols];
  const size = `${rowsN}x${cols}`;
  const out: Row[] = [];

  // REST, a Seldon client → a v2 model: ndarray in, the model's v2 FP32 answer back.
  {
    const request = Buffer.from(JSON.stringify({ data: { ndarray: nested } }));
    const answer = Buffer.from(JSON.stringify({ model_name: 'm', outputs: [{ name: 'output-0', shape, datatype: 'FP32', data: values }] }));
    const input = { name: 'input-0', datatype: 'FP32' as const };
    const first = seldonRequestToV2(request, input);
    const toClient = v2AnswerToSeldon(200, answer, first.form, null);
    out.push(
      ...restRows(
        `REST seldon->v2 ${size}`,
        iterations,
        request,
        first.body,
        answer,
        toClient,
        () => seldonRequestToV2(request, input),
        () => v2AnswerToSeldon(200, answer, first.form, null),
      ),
    );
  }
  // REST, a v2 client → a Seldon model: a v2 FP32 input in, the wrapper's tensor answer back.
  {
    const request = Buffer.from(JSON.stringify({ inputs: [{ name: 'input-0', shape, datatype: 'FP32', data: values }] }));
    const answer = Buffer.from(JSON.stringify({ data: { names: [], tensor: { shape, values } }, meta: {} }));
    const first = v2RequestToSeldon(request, 'm');
    const toClient = seldonAnswerToV2(200, answer, first.form);
    out.push(
      ...restRows(
        `REST v2->seldon ${size}`,
        iterations,
        request,
        first.body,
        answer,
        toClient,
        () => v2RequestToSeldon(request, 'm'),
        () => seldonAnswerToV2(200, answer, first.form),
      ),
    );
  }
  // gRPC, a Seldon client → a v2 model: a SeldonMessage tensor in, the model's FP32 contents back.
  {
    const request = lengthPrefixed(SELDON_MESSAGE.serialize({ data: { tensor: { shape, values } } }));
    const answer = lengthPrefixed(INFER_RESPONSE.serialize({ model_name: 'm', outputs: [{ name: 'output-0', datatype: 'FP32', shape, contents: { fp32_contents: values } }] }));
    const p = policy('v2', 'FP32');
    const first = new GrpcTranslation('seldon', 'v2', '', p);
    const toModel = first.request(request);
    const toClient = first.answer(answer);
    const inOut = [protoYardstick(SELDON_MESSAGE, request, INFER_REQUEST, toModel), protoYardstick(INFER_RESPONSE, answer, SELDON_MESSAGE, toClient)];
    out.push({
      name: `gRPC seldon->v2 ${size}`,
      bytes: `${request.length} / ${answer.length}`,
      iterations,
      translate: () => {
        const t = new GrpcTranslation('seldon', 'v2', '', p);
        t.request(request);
        t.answer(answer);
      },
      yardstick: () => {
        inOut[0]!();
        inOut[1]!();
      },
    });
  }
  // gRPC, a v2 client → a Seldon model: FP32 raw contents in (as tritonclient sends them), the wrapper's tensor back.
  {
    const raw = Buffer.from(new Float32Array(values).buffer);
    const request = lengthPrefixed(INFER_REQUEST.serialize({ model_name: 'm', inputs: [{ name: 'input-0', datatype: 'FP32', shape }], raw_input_contents: [raw] }));
    const answer = lengthPrefixed(SELDON_MESSAGE.serialize({ data: { names: [], tensor: { shape, values } }, meta: {} }));
    const p = policy('seldon', null);
    const first = new GrpcTranslation('v2', 'seldon', '', p);
    const toModel = first.request(request);
    const toClient = first.answer(answer);
    const inOut = [protoYardstick(INFER_REQUEST, request, SELDON_MESSAGE, toModel), protoYardstick(SELDON_MESSAGE, answer, INFER_RESPONSE, toClient)];
    out.push({
      name: `gRPC v2->seldon ${size}`,
      bytes: `${request.length} / ${answer.length}`,
      iterations,
      translate: () => {
        const t = new GrpcTranslation('v2', 'seldon', '', p);
        t.request(request);
        t.answer(answer);
      },
      yardstick: () => {
        inOut[0]!();
        inOut[1]!();
      },
    });
  }
  return out;
}

/** CPU µs per call of `f` over `iterations` calls. */
function cpuPerCall(iterations: number, f: () => void): number {
  const t0 = process.cpuUsage();
  for (let i = 0; i < iterations; i++) f();
  const t = process.cpuUsage(t0);
  return (t.user + t.system) / iterations;
}

const ALL = [...rows(1, 4, 20_000), ...rows(100, 100, 40), ...rows(1, 150_528, 4)].filter((r) => r.name.includes(ONLY));
const out: string[][] = [];
for (const r of ALL) {
  // Warm up both paths.
  for (let i = 0; i < Math.min(r.iterations, 30); i++) {
    r.translate();
    r.yardstick();
  }
  const ratios: number[] = [];
  let bestT = Infinity;
  let bestY = Infinity;
  for (let round = 0; round < ROUNDS; round++) {
    const t = cpuPerCall(r.iterations, r.translate);
    const y = cpuPerCall(r.iterations, r.yardstick);
    bestT = Math.min(bestT, t);
    bestY = Math.min(bestY, y);
    ratios.push(t / y);
  }
  out.push([r.name, r.bytes, bestT.toFixed(1), bestY.toFixed(1), `${median(ratios).toFixed(2)}x`, ratios.map((x) => x.toFixed(2)).join(' ')]);
}
process.stdout.write(table(['way and size', 'request / answer bytes', 'translated µs (both bodies)', 'parse+write once µs', 'ratio (median of rounds)', 'ratio per round'], out) + '\n');
process.stdout.write(`\nNode ${process.version}; CPU per request, ${ROUNDS} interleaved rounds (the machine may be busy: compare the ratio).\n`);
