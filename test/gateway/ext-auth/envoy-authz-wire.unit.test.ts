/**
 * The CheckRequest the gateway writes for Envoy's external authorization service, byte for byte
 * against protobufjs (through @grpc/proto-loader's serializer, the one grpc-js clients use) writing
 * the same message from the published field numbers (test/protos/envoy-ext-authz.proto). Both write
 * fields in field-number order and a negative int64 as ten bytes, so the bytes must be equal, not
 * only decode alike.
 */
import { fileURLToPath } from 'node:url';
import * as protoLoader from '@grpc/proto-loader';
import { describe, expect, it } from 'vitest';
import { encodeCheckRequest, type CheckAttributes } from '../../../gateway/ext-auth/envoy-authz-wire.js';

const PROTO_DIR = fileURLToPath(new URL('../../protos/', import.meta.url));
const def = protoLoader.loadSync('envoy-ext-authz.proto', { includeDirs: [PROTO_DIR], keepCase: true });
const CheckRequest = def['envoy.service.auth.v3.CheckRequest'] as protoLoader.MessageTypeDefinition<object, object>;

const peer = (address: string | undefined, port: number | undefined) =>
  address === undefined ? undefined : { address: { socket_address: { address, ...(port === undefined ? {} : { port_value: port }) } } };

/** The same request as protobufjs writes it, from the attributes as the proto names them. */
function reference(a: CheckAttributes): Buffer {
  const seconds = Math.floor(a.timeMs / 1000);
  const http = {
    ...(a.id === '' ? {} : { id: a.id }),
    method: a.method,
    headers: Object.fromEntries(a.headers),
    path: a.path,
    host: a.host,
    scheme: a.scheme,
    size: a.size,
    protocol: a.protocol,
    ...(a.body === null || a.body.length === 0 ? {} : Buffer.from(a.body.toString('utf8'), 'utf8').equals(a.body) ? { body: a.body.toString('utf8') } : { raw_body: a.body }),
  };
  const source = peer(a.sourceAddress, a.sourcePort);
  const destination = peer(a.destinationAddress, a.destinationPort);
  return CheckRequest.serialize({
    attributes: {
      ...(source ? { source } : {}),
      ...(destination ? { destination } : {}),
      request: { time: { seconds, nanos: (a.timeMs - seconds * 1000) * 1_000_000 }, http },
      ...(a.contextExtensions ? { context_extensions: Object.fromEntries(a.contextExtensions) } : {}),
    },
  });
}

const BASE: CheckAttributes = {
  sourceAddress: '10.1.2.3',
  sourcePort: 51234,
  destinationAddress: '127.0.0.1',
  destinationPort: 8003,
  id: 'req-1',
  method: 'POST',
  headers: new Map([
    ['content-type', 'application/json'],
    ['authorization', 'Bearer good'],
    ['x-many', 'a,b'],
  ]),
  path: '/seldon/ns/iris/api/v1.0/predictions',
  host: 'gateway.example',
  scheme: 'http',
  size: 27,
  protocol: 'HTTP/1.1',
  body: Buffer.from('{"data":{"ndarray":[[1]]}}'),
  timeMs: 1_764_000_000_123,
};

describe('a CheckRequest on the wire', () => {
  const cases: [string, CheckAttributes][] = [
    ['a REST request with its UTF-8 body', BASE],
    ['a body that is not UTF-8 goes as raw_body', { ...BASE, body: Buffer.from([0xff, 0x00, 0xc3, 0x28, 0x80]) }],
    ['an unknown length is -1, an int64 of ten bytes', { ...BASE, size: -1, body: null }],
    [
      'no id, no peers, an empty body, a whole second',
      { ...BASE, id: '', sourceAddress: undefined, sourcePort: undefined, destinationAddress: undefined, destinationPort: undefined, body: Buffer.alloc(0), timeMs: 1_764_000_000_000 },
    ],
    ['a peer without a port', { ...BASE, sourcePort: undefined }],
    [
      'the route’s context extensions',
      {
        ...BASE,
        contextExtensions: [
          ['tenant', 'acme'],
          ['tier', 'gold'],
        ],
      },
    ],
    ['headers and a body past 127 bytes (two-byte lengths)', { ...BASE, headers: new Map([['x-long', 'v'.repeat(300)]]), body: Buffer.from('x'.repeat(70_000)), size: 70_000, protocol: 'HTTP/2' }],
    ['multi-byte UTF-8 in values', { ...BASE, headers: new Map([['x-name', 'Zoë ✓']]), path: '/p/ü' }],
  ];
  for (const [name, a] of cases)
    it(`${name}: the bytes protobufjs writes`, () => {
      expect(encodeCheckRequest(a).toString('hex')).toBe(reference(a).toString('hex'));
    });
});
