/**
 * The official Seldon Python client, unchanged (seldon_core 1.17.1, vendored: test/fixtures/seldon-python/),
 * through a real gateway, over REST and gRPC: it gets the same answer from a deployment whose model is
 * served in v2 as from the same model served by Seldon's own Python wrapper (docs/protocol-translation.md).
 *
 * - `wrapped`: doubling_model.py served by seldon_core.wrapper (its Flask REST app and its gRPC server),
 *   Seldon protocol, no annotation: the gateway passes it through;
 * - `served`: the same model served in v2 (test/fixtures/v2-doubling-model.ts, as MLServer serves it),
 *   `spec.protocol: v2` and `seldon.io/gateway-protocol`: the gateway translates;
 * - for ndarray, tensor, strData and binData payloads, each transport: the two answers are equal (the
 *   answer as the client returns it, its data as seldon_core reads it: values, shape, dtype; names), and
 *   each model received the client's data, the wrapper's as a numpy array, str or bytes, the v2 model's as
 *   one v2 input (binData: one BYTES element of content_type base64, which the stand-in decodes as
 *   MLServer's Base64Codec does);
 * - jsonData, which has no v2 form: a Seldon-style 400 (gRPC INVALID_ARGUMENT), nothing sent;
 * - feedback is never turned into an inference: it reaches the v2 model as it came (and fails there).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sdep, startTestGateway, waitFor, type TestGateway } from '../../helpers/gateway.js';
import { startSeldonClient, startSeldonWrapper, type PythonProcess } from '../../helpers/seldon-python.js';
import { startV2DoublingModel, type V2DoublingModel } from '../../fixtures/v2-doubling-model.js';

const CLASS_NAMES = ['a', 'b'];

type Answer = Record<string, unknown>;

describe('the official Seldon Python client: a model served in v2 answers as the one on Seldon wrapper', () => {
  let wrapper: { rest: number; grpc: number; proc: PythonProcess };
  let v2: V2DoublingModel;
  let client: Awaited<ReturnType<typeof startSeldonClient>>;
  let gw: TestGateway;

  beforeAll(async () => {
    [wrapper, v2, client] = await Promise.all([startSeldonWrapper(CLASS_NAMES), startV2DoublingModel('doubler'), startSeldonClient()]);
    gw = await startTestGateway({
      manifests: {
        'wrapped.yaml': sdep('wrapped', 'm', { predictors: [{ name: 'main', graph: { name: 'doubler' } }] }),
        'served.yaml': sdep('served', 'm', { protocol: 'v2', predictors: [{ name: 'main', graph: { name: 'doubler' } }] }, { 'seldon.io/gateway-protocol': `names: [${CLASS_NAMES.join(', ')}]` }),
      },
      resolve: {
        'wrapped-main.m:8000': wrapper.rest,
        'wrapped-main.m:5001': wrapper.grpc,
        'served-main.m:8000': v2.restPort,
        'served-main.m:5001': v2.grpcPort,
      },
    });
  }, 60_000);
  afterAll(async () => {
    await gw?.stop();
    await client?.stop();
    await wrapper?.proc.stop();
    await v2?.close();
  });

  /** The same call to both deployments: the wrapper's answer, the v2 one's, and what each model received. */
  async function both(transport: 'rest' | 'grpc', req: Answer): Promise<{ wrapped: Answer; served: Answer; atWrapper: Answer; atV2: V2DoublingModel['inferences'][number] }> {
    const seen = wrapper.proc.lines.length;
    const inferred = v2.inferences.length;
    const base = { transport, gateway: `127.0.0.1:${gw.port}`, namespace: 'm', ...req };
    const wrapped = await client.call({ ...base, deployment: 'wrapped' });
    const served = await client.call({ ...base, deployment: 'served' });
    // The wrapper's model prints what it got before it answers; its line may still be in the pipe.
    await waitFor(() => wrapper.proc.lines.length > seen);
    expect(wrapper.proc.lines.length).toBe(seen + 1);
    expect(v2.inferences.length).toBe(inferred + 1);
    return { wrapped, served, atWrapper: wrapper.proc.lines[seen]!, atV2: v2.inferences[inferred]! };
  }

  for (const transport of ['rest', 'grpc'] as const) {
    describe(transport, () => {
      const arrays: [string, Answer, number[]][] = [
        [
          'ndarray of rank 2, with names',
          {
            payload_type: 'ndarray',
            data: [
              [1.5, 2],
              [3, -4.25],
            ],
            dtype: 'float64',
            names: ['x', 'y'],
          },
          [2, 2],
        ],
        [
          'tensor of rank 2',
          {
            payload_type: 'tensor',
            data: [
              [1, 2],
              [3, 4],
              [5, 6.5],
            ],
            dtype: 'float64',
          },
          [3, 2],
        ],
        ['ndarray of integers (the client sends them as doubles)', { payload_type: 'ndarray', data: [[7, 9]], dtype: 'int64' }, [1, 2]],
        ['tensor of rank 3', { payload_type: 'tensor', data: [[[0.25], [0.5]]], dtype: 'float64' }, [1, 2, 1]],
        ['tensor of rank 1 (the wrapper names no columns)', { payload_type: 'tensor', data: [1, 2.5, -3], dtype: 'float64' }, [3]],
        ['ndarray of rank 1', { payload_type: 'ndarray', data: [0.5, 8], dtype: 'float64' }, [2]],
      ];
      it.each(arrays)('%s: the same answer, and each model received the data', async (_name, req, shape) => {
        const { wrapped, served, atWrapper, atV2 } = await both(transport, { call: 'predict', ...req });
        expect(wrapped['success'], JSON.stringify(wrapped)).toBe(true);
        expect(served['success'], JSON.stringify(served)).toBe(true);
        expect(served['response']).toEqual(wrapped['response']);
        expect(served['array']).toEqual(wrapped['array']);
        expect(served['names']).toEqual(wrapped['names']);
        expect(served['form']).toBe(req['payload_type']);
        const sent = (req['data'] as unknown[]).flat(3).map(Number);
        expect(wrapped['array']).toEqual({ data: double(req['data']), shape, dtype: 'float64' });
        expect(wrapped['names']).toEqual(shape.length > 1 ? CLASS_NAMES : []);
        expect(atWrapper).toMatchObject({ event: 'predict', kind: 'array', data: numbers(req['data']), shape, dtype: 'float64' });
        expect(atV2.inputs).toEqual([{ name: 'input-0', datatype: 'FP64', shape, data: sent }]);
        expect(atV2.target).toBe(transport === 'rest' ? '/v2/models/doubler/infer' : 'inference.GRPCInferenceService/ModelInfer');
      });

      it.each([
        ['ASCII', 'hello seldon'],
        ['beyond ASCII (UTF-8 both ways)', 'grüße aus 東京'],
      ])('strData, %s: the same answer, the string each model received', async (_name, text) => {
        const { wrapped, served, atWrapper, atV2 } = await both(transport, { call: 'predict', str_data: text });
        expect(wrapped['strData']).toBe(text.toUpperCase());
        expect(served['response']).toEqual(wrapped['response']);
        expect(served['strData']).toBe(text.toUpperCase());
        expect(atWrapper).toMatchObject({ event: 'predict', kind: 'str', value: text });
        const got = atV2.inputs.map((i) => ({ ...i, data: i.data.map((d) => (Buffer.isBuffer(d) ? d.toString('utf8') : d)) }));
        expect(got).toEqual([{ name: 'input-0', datatype: 'BYTES', shape: [1], data: [text], parameters: transport === 'rest' ? { content_type: 'str' } : { content_type: { string_param: 'str' } } }]);
      });

      it("binData: the same answer (the model's bytes), the v2 model got one BYTES element of content_type base64 that MLServer's Base64Codec decodes to the client's bytes", async () => {
        // Not UTF-8 (0xff, a lone 0xc3), a NUL, a newline, letters the model upper-cases.
        const bytes = Buffer.from([0x00, 0xff, 0x68, 0x69, 0x0a, 0xc3, 0x7a]);
        const { wrapped, served, atWrapper, atV2 } = await both(transport, { call: 'predict', bin_data: bytes.toString('base64') });
        const upper = Buffer.from([0x00, 0xff, 0x48, 0x49, 0x0a, 0xc3, 0x5a]).toString('base64');
        expect(wrapped['binData'], JSON.stringify(wrapped)).toBe(upper);
        expect(served['success'], JSON.stringify(served)).toBe(true);
        expect(served['binData']).toBe(upper);
        expect(served['response']).toEqual(wrapped['response']);
        expect(atWrapper).toMatchObject({ event: 'predict', kind: 'bytes', value: bytes.toString('latin1') });
        const got = atV2.inputs.map((i) => ({ ...i, data: i.data.map((d) => (Buffer.isBuffer(d) ? d.toString('latin1') : d)) }));
        expect(got).toEqual([
          {
            name: 'input-0',
            datatype: 'BYTES',
            shape: [1],
            data: [bytes.toString('base64')],
            parameters: transport === 'rest' ? { content_type: 'base64' } : { content_type: { string_param: 'base64' } },
          },
        ]);
      });

      it('jsonData has no v2 form: the client gets a Seldon-style 400 (gRPC INVALID_ARGUMENT) saying so, and the v2 model nothing', async () => {
        const inferred = v2.inferences.length;
        const served = await client.call({ call: 'predict', transport, gateway: `127.0.0.1:${gw.port}`, namespace: 'm', deployment: 'served', json_data: { a: [1, 2] } });
        expect(served['success']).toBe(false);
        const info = 'jsonData has no Open Inference Protocol form: send data.tensor, data.ndarray, strData or binData';
        if (transport === 'rest') {
          // The client says the status and returns the body it read as JSON.
          expect(served['msg']).toBe('400:Bad Request');
          expect(served['response']).toEqual({ status: { code: 400, info, reason: 'BAD_REQUEST', status: 'FAILURE' } });
        } else {
          expect(served['msg']).toContain('StatusCode.INVALID_ARGUMENT');
          expect(served['msg']).toContain(info);
        }
        expect(v2.inferences.length).toBe(inferred);
      });
    });
  }

  it('feedback over REST is never turned into an inference: the v2 model gets it as it came', async () => {
    const inferred = v2.inferences.length;
    const seen = wrapper.proc.lines.length;
    const req = { call: 'feedback', transport: 'rest', gateway: `127.0.0.1:${gw.port}`, namespace: 'm', payload_type: 'ndarray', data: [[1, 2]], dtype: 'float64', reward: 1 };
    const wrapped = await client.call({ ...req, deployment: 'wrapped' });
    expect(wrapped['success'], JSON.stringify(wrapped)).toBe(true);
    await waitFor(() => wrapper.proc.lines.some((l, i) => i >= seen && l['event'] === 'feedback'));
    const served = await client.call({ ...req, deployment: 'served' });
    // Its prediction was translated (one inference); the feedback was not: it reached the model's REST port as a feedback, 404 there.
    expect(v2.inferences.length).toBe(inferred + 1);
    expect(served['success']).toBe(false);
    expect(served['msg']).toMatch(/^404/);
    expect(v2.others.at(-1)).toBe('POST /api/v1.0/feedback');
  });

  it('feedback over gRPC is never turned into an inference: the v2 model does not serve it', async () => {
    const inferred = v2.inferences.length;
    const req = { call: 'feedback', transport: 'grpc', gateway: `127.0.0.1:${gw.port}`, namespace: 'm', payload_type: 'tensor', data: [[1, 2]], dtype: 'float64', reward: 1 };
    const wrapped = await client.call({ ...req, deployment: 'wrapped' });
    expect(wrapped['success'], JSON.stringify(wrapped)).toBe(true);
    const served = await client.call({ ...req, deployment: 'served' });
    expect(v2.inferences.length).toBe(inferred + 1);
    expect(served['success']).toBe(false);
    expect(served['msg']).toMatch(/UNIMPLEMENTED/);
  });
});

/** The nested numbers, as doubles. */
const numbers = (data: unknown): unknown => (Array.isArray(data) ? data.map(numbers) : Number(data));
const double = (data: unknown): unknown => (Array.isArray(data) ? data.map(double) : Number(data) * 2);
