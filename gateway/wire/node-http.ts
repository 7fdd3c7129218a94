/**
 * `node:http`'s values, required rather than imported. An ES module import of `node:http` builds
 * its namespace, whose lazy `WebSocket`, `MessageEvent` and `CloseEvent` getters load Node's own
 * undici (nodejs/node#59686): 2 to 3 MB of every process's idle memory that the gateway never uses
 * (docs/observability.md#memory). Types are imported as ever (`import type`).
 */
import { createRequire } from 'node:module';

const http = createRequire(import.meta.url)('node:http') as typeof import('node:http');

export const { STATUS_CODES, createServer, request, IncomingMessage, ServerResponse } = http;
