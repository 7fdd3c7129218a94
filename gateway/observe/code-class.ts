/**
 * The class of an answer's status, shared by REST and gRPC so that one query (and one colour on
 * the admin page) covers both: `2xx`, `3xx`, `4xx`, `5xx` for HTTP statuses; a gRPC status by the
 * HTTP status it corresponds to (as grpc-gateway and Envoy's grpc_http1_bridge map them):
 * CANCELLED 499, INVALID_ARGUMENT 400, DEADLINE_EXCEEDED 504, RESOURCE_EXHAUSTED 429,
 * UNIMPLEMENTED 501, UNAVAILABLE 503, UNAUTHENTICATED 401 … so client faults are 4xx and the
 * gateway's or the model's are 5xx.
 */
import type { RouteKind as Protocol } from '../../routing/types.js';

export type CodeClass = '1xx' | '2xx' | '3xx' | '4xx' | '5xx' | 'other';
export const CODE_CLASSES: readonly CodeClass[] = ['1xx', '2xx', '3xx', '4xx', '5xx', 'other'];

/** gRPC status 0..16 → its class (index = status). */
const GRPC_CLASS: readonly CodeClass[] = [
  '2xx', // OK
  '4xx', // CANCELLED (499)
  '5xx', // UNKNOWN
  '4xx', // INVALID_ARGUMENT
  '5xx', // DEADLINE_EXCEEDED (504)
  '4xx', // NOT_FOUND
  '4xx', // ALREADY_EXISTS
  '4xx', // PERMISSION_DENIED
  '4xx', // RESOURCE_EXHAUSTED (429)
  '4xx', // FAILED_PRECONDITION
  '4xx', // ABORTED (409)
  '4xx', // OUT_OF_RANGE
  '5xx', // UNIMPLEMENTED (501)
  '5xx', // INTERNAL
  '5xx', // UNAVAILABLE (503)
  '5xx', // DATA_LOSS
  '4xx', // UNAUTHENTICATED (401)
];

const GRPC_INDEX: readonly number[] = GRPC_CLASS.map((c) => CODE_CLASSES.indexOf(c));
const OTHER = CODE_CLASSES.length - 1;

/** Index of the class in CODE_CLASSES (for arrays of series per class; on the hot path). */
export function codeClassIndex(protocol: Protocol, code: number): number {
  if (protocol === 'grpc') return GRPC_INDEX[code] ?? OTHER;
  const hundreds = Math.floor(code / 100);
  return hundreds >= 1 && hundreds <= 5 ? hundreds - 1 : OTHER;
}

export function codeClass(protocol: Protocol, code: number | string): CodeClass {
  return CODE_CLASSES[codeClassIndex(protocol, Number(code))]!;
}
