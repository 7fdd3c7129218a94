/**
 * The small wire pieces of the gRPC side: grpc-message encoding (as the real grpc-js client
 * decodes it) and the optional gRPC-only port. grpc-timeout values are in test/gateway/grpc/timeout.unit.test.ts.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrpcMessage } from '../../../gateway/grpc/answer.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from '../../fixtures/grpc-backend.js';
import { answeredBy, md, predict } from '../../helpers/grpc.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';

describe('grpc-message encoding', () => {
  it('leaves printable ASCII alone and percent-encodes % and everything else as UTF-8', () => {
    expect(encodeGrpcMessage('no route for gRPC /a.B/C with seldon="x" namespace="y": a, b')).toBe('no route for gRPC /a.B/C with seldon="x" namespace="y": a, b');
    expect(encodeGrpcMessage('100% é\n')).toBe('100%25 %C3%A9%0A');
  });

  it('round-trips through the real client', async () => {
    const backend = await startGrpcBackend({ name: 'msg' });
    const gw = await startTestGateway({ manifests: {}, resolve: {} });
    const clients = grpcClients(`127.0.0.1:${gw.port}`);
    try {
      const seldon = 'a/100%=ok, b:c';
      const o = await predict(clients, {}, md({ seldon, namespace: 'ns' }));
      expect(o.ok).toBe(false);
      if (!o.ok) expect(o.error.details).toBe(`no route for gRPC /seldon.protos.Seldon/Predict with seldon="${seldon}" namespace="ns"`);
    } finally {
      clients.close();
      await gw.stop();
      await backend.close();
    }
  });
});

describe('the gRPC-only port (--grpc-port)', () => {
  let backend: GrpcBackend;
  let gw: TestGateway;
  let clients: GrpcClients;
  beforeAll(async () => {
    backend = await startGrpcBackend({ name: 'only' });
    gw = await startTestGateway({
      manifests: { 'iris.yaml': sdep('iris', 'models', { predictors: [{ name: 'default' }] }) },
      resolve: { 'iris-default.models:5001': backend.port },
      args: ['--grpc-port', '0'],
    });
    clients = grpcClients(`127.0.0.1:${gw.grpcPort}`);
  });
  afterAll(async () => {
    clients?.close();
    await gw?.stop();
    await backend?.close();
  });

  it('serves the same routes as the shared port', async () => {
    expect(gw.grpcPort).toBeGreaterThan(0);
    expect(answeredBy(await predict(clients, {}, md({ seldon: 'iris', namespace: 'models' })))).toBe('only');
    const o = await predict(clients, {}, md({ seldon: 'nope', namespace: 'models' }));
    expect(!o.ok && o.error.code).toBe(grpc.status.UNIMPLEMENTED);
  });
});
