/**
 * The small wire pieces of the gRPC side: grpc-timeout values and grpc-message encoding (as the
 * real grpc-js client decodes it), and the optional gRPC-only port.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGrpcMessage } from '../gateway/grpc/answer.js';
import { formatGrpcTimeout, parseGrpcTimeout } from '../gateway/grpc/timeout.js';
import { grpcClients, startGrpcBackend, type GrpcBackend, type GrpcClients } from './fixtures/grpc-backend.js';
import { answeredBy, md, predict } from './grpc-helpers.js';
import { sdep, startTestGateway, type TestGateway } from './helpers/gateway.js';

describe('grpc-timeout', () => {
  it('parses every unit to milliseconds', () => {
    expect(parseGrpcTimeout('1H')).toBe(3_600_000);
    expect(parseGrpcTimeout('2M')).toBe(120_000);
    expect(parseGrpcTimeout('3S')).toBe(3000);
    expect(parseGrpcTimeout('250m')).toBe(250);
    expect(parseGrpcTimeout('1500u')).toBe(1.5);
    expect(parseGrpcTimeout('2000000n')).toBe(2);
    expect(parseGrpcTimeout('99999999m')).toBe(99_999_999);
  });

  it('ignores absent and malformed values', () => {
    for (const v of [undefined, '', 'm', '10', '10x', '-1m', '1.5S', '123456789m', ' 1m', '1 m']) expect(parseGrpcTimeout(v)).toBeUndefined();
  });

  it('formats a budget in the finest unit that fits 8 digits, rounding up, at least 1 ms', () => {
    expect(formatGrpcTimeout(300)).toBe('300m');
    expect(formatGrpcTimeout(0.2)).toBe('1m');
    expect(formatGrpcTimeout(-5)).toBe('1m');
    expect(formatGrpcTimeout(299.1)).toBe('300m');
    expect(formatGrpcTimeout(99_999_999)).toBe('99999999m');
    expect(formatGrpcTimeout(100_000_000)).toBe('100000S');
    for (const ms of [1, 77, 3000, 12_345_678, 2 ** 40]) expect(parseGrpcTimeout(formatGrpcTimeout(ms))).toBeGreaterThanOrEqual(Math.min(ms, 99_999_999 * 3_600_000));
  });
});

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
