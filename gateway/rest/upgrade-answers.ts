/**
 * The answers an upgrade's exchange (rest/upgrade-exchange.ts) writes on the client's socket, each
 * followed by the connection's close: the gateway's own error on a route, with the route's error
 * overrides and answer edits as a request's (rest/route-answer.ts `errorAnswer`, Envoy's
 * local_reply_config over its local replies); the gate's refusal as a request's would read; the
 * model's answer head with the Mapping's answer edits.
 */
import type { IncomingMessage } from 'node:http';
import { STATUS_CODES } from '../wire/node-http.js';
import type { Socket } from 'node:net';
import type { Deny } from '../auth/gate.js';
import { lingeringClose } from '../edge/lingering-close.js';
import { withServer } from '../edge/server-name.js';
import { editFields } from '../forward/mapping-edits.js';
import type { Backend } from '../../routing/types.js';
import { DENIAL_FRAMING } from './ext-auth-answer.js';

/** A raw answer's Server line: the Module's `server_name`, or none. */
export const serverLine = (server: string | undefined): string => (server === undefined ? '' : `server: ${server}\r\n`);

/** A whole answer of `status` (`fields` with its Content-Length), then the lingering close. */
export function writeWhole(socket: Socket, status: number, fields: readonly string[], body: Buffer, server: string | undefined): void {
  let head = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n`;
  for (let i = 0; i < fields.length; i += 2) head += `${fields[i]}: ${fields[i + 1]}\r\n`;
  socket.write(`${head}${serverLine(server)}connection: close\r\n\r\n`, 'latin1');
  socket.write(body);
  lingeringClose(socket);
}

/** The gate's refusal with a body of the auth service's own (`v.raw`) or the gate's JSON (`v.body`), as a request's would read. */
export function writeDenial(socket: Socket, v: Deny, server: string | undefined): void {
  const fields = Object.entries(v.headers ?? {}).flat();
  let body: Buffer;
  if (v.raw !== undefined) {
    const raw = v.raw.headers;
    for (let i = 0; i < raw.length; i += 2) if (!DENIAL_FRAMING.has(raw[i]!)) fields.push(raw[i]!, raw[i + 1]!);
    body = v.raw.body;
  } else {
    fields.push('content-type', 'application/json');
    body = Buffer.from(v.body!);
  }
  fields.push('content-length', String(body.length));
  writeWhole(socket, v.status, fields, body, server);
}

/** Why a 101 is refused: it switches to another protocol than the one offered, or names none. */
export const wrongSwitch = (b: Backend, offered: string, res: IncomingMessage): string =>
  `${b.id} answered the upgrade to ${offered} with ${res.statusCode} ${res.headers.upgrade === undefined ? '(no upgrade)' : `upgrade: ${res.headers.upgrade}`}`;

/** The model's answer head as the client gets it: `fields` with the Mapping's answer edits, the auth service's answer fields and the Module's `server_name`. */
export function answerHead(res: IncomingMessage, fields: string[], b: Backend, extra: readonly string[] | undefined, server: string | undefined): Buffer {
  const edits = b.mapping!.responseHeaders;
  if (edits !== null) editFields(fields, edits);
  if (extra !== undefined) fields.push(...extra);
  const out = server === undefined ? fields : (withServer(fields, server) as string[]);
  let text = `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? ''}\r\n`;
  for (let i = 0; i < out.length; i += 2) text += `${out[i]}: ${out[i + 1]}\r\n`;
  return Buffer.from(`${text}\r\n`, 'latin1');
}
