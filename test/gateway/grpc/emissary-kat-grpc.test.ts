/**
 * Emissary's EndpointGrpcTest (python/tests/src/tests/kat/t_grpc.py), ported over real gRPC (@grpc/grpc-js
 * client and server): a `grpc: true` Mapping on `/echo.EchoService/` with `rewrite: ""` (the path as
 * called), `load_balancer: round_robin` and `resolver: my-endpoint`, a KubernetesEndpointResolver of the
 * same annotation (what the gateway does anyway: the Service's ready endpoints). The model's answer
 * status reaches the client as it asked in `kat-req-echo-requested-status` ([0] OK, [1] 7), the model
 * is called at the path as called with the bytes sent, and the deployment has no errors ([2], the
 * diag's errors). One line beyond the class's config: the `namespace` header every gRPC Mapping here
 * carries (a deployment's Mappings stay in its namespace).
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { md } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { routesReport } from '../../helpers/observability.js';

const NS = 'models';
const raw = (b: Buffer): Buffer => b;
const ECHO: grpc.ServiceDefinition = {
  Echo: { path: '/echo.EchoService/Echo', requestStream: false, responseStream: false, requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw },
};

const CONFIG = [
  ['apiVersion: getambassador.io/v3alpha1', 'kind: KubernetesEndpointResolver', 'metadata:', '  name: my-endpoint', 'spec:', '  ambassador_id: ["endpointgrpctest"]'].join('\n'),
  [
    'apiVersion: getambassador.io/v3alpha1',
    'kind: Mapping',
    'metadata:',
    '  name: egrpc',
    'spec:',
    '  ambassador_id: ["endpointgrpctest"]',
    '  grpc: True',
    '  hostname: "*"',
    '  prefix: /echo.EchoService/',
    '  rewrite: ""',
    '  service: egrpc:8080',
    '  resolver: my-endpoint',
    '  load_balancer:',
    '    policy: round_robin',
    '  headers:',
    `    namespace: ${NS}`,
  ].join('\n'),
].join('\n---\n');

interface EchoCall {
  readonly path: string;
  readonly body: string;
}

describe('EndpointGrpcTest', () => {
  let server: grpc.Server;
  const calls: EchoCall[] = [];
  let gw: TestGateway;
  let client: grpc.Client;

  beforeAll(async () => {
    server = new grpc.Server();
    // kat-server's gRPC echo: the request back, or the status kat-req-echo-requested-status asks for.
    server.addService(ECHO, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, done: grpc.sendUnaryData<Buffer>) => {
        calls.push({ path: call.getPath(), body: call.request.toString('latin1') });
        const asked = Number(call.metadata.get('kat-req-echo-requested-status')[0] ?? 0);
        if (asked === 0) done(null, call.request);
        else done({ code: asked, details: `requested status ${asked}` });
      },
    });
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    gw = await startTestGateway({
      manifests: { 'egrpc.yaml': sdep('egrpc', NS, { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': CONFIG, 'seldon.io/ambassador-id': 'endpointgrpctest' }) },
      resolve: { [`egrpc.${NS}:8080`]: port },
      // The KAT's Ambassador is the class's own id.
      args: ['--ambassador-id', 'endpointgrpctest'],
    });
    const Ctor = grpc.makeGenericClientConstructor(ECHO, 'echo.EchoService');
    client = new Ctor(`127.0.0.1:${gw.port}`, grpc.credentials.createInsecure());
  });
  afterAll(async () => {
    client?.close();
    await gw?.stop();
    server?.forceShutdown();
  });

  const echo = (body: string, status: string): Promise<{ code: number; body?: string }> =>
    new Promise((resolve) => {
      (client as unknown as { Echo: (r: Buffer, m: grpc.Metadata, cb: (e: grpc.ServiceError | null, r?: Buffer) => void) => void }).Echo(
        Buffer.from(body),
        md({ namespace: NS, 'kat-req-echo-requested-status': status }),
        (e, r) => resolve(e ? { code: e.code } : { code: 0, body: r!.toString('latin1') }),
      );
    });

  it('[0] grpc-status 0: the model’s answer, the model called at the path as called with the bytes sent', async () => {
    const before = calls.length;
    expect(await echo('\x0a\x05hello', '0')).toEqual({ code: 0, body: '\x0a\x05hello' });
    expect(calls.slice(before)).toEqual([{ path: '/echo.EchoService/Echo', body: '\x0a\x05hello' }]);
  });

  it('[1] grpc-status 7: the model’s status reaches the client', async () => {
    const before = calls.length;
    expect(await echo('seven', '7')).toEqual({ code: 7 });
    expect(calls.slice(before)).toEqual([{ path: '/echo.EchoService/Echo', body: 'seven' }]);
  });

  it('[2] no errors: the Mapping and its resolver are accepted', async () => {
    expect(await routesReport(gw.adminUrl, 'egrpc')).toMatchObject({ state: 'accepted', reasons: [] });
  });
});
