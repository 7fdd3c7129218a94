/**
 * The fuzzers' model: a raw TCP server on 127.0.0.1 that reads what the gateway sends with llhttp
 * (strict) and records every request, whole or cut off, by the case id in its target.
 *
 * On the request side it answers each request with a body naming it (`{"got":"<target>"}`), so a
 * client can tell an answer that is not its own. On the response side the answer's bytes are the
 * case's own, looked up by the case id (`respond`).
 */
import net, { type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';

interface Parser {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(b: Buffer): number | Error;
  close(): void;
  [callback: number]: unknown;
}
const { HTTPParser, methods } = createRequire(import.meta.url)('_http_common') as {
  HTTPParser: { new (): Parser; REQUEST: number; kLenientNone: number; kOnHeaders: number; kOnHeadersComplete: number; kOnBody: number; kOnMessageComplete: number; kOnExecute: number };
  methods: string[];
};

export interface ModelRequest {
  readonly method: string;
  readonly target: string;
  readonly rawHeaders: string[];
  body: string;
  complete: boolean;
  /** The gateway's bytes did not parse (an error code of llhttp's). */
  error?: string;
}

/** The case id and place in a target the model received: `/<id>.<place>…`. */
const ATTRIBUTION = /^\/([0-9a-z]{8})\.([0-9sze])/;

export interface Model {
  readonly port: number;
  /** Requests received for a case, in order of arrival; later ones are `late` unless `mayFollow` (its client gave up mid-request). */
  take(id: string, mayFollow?: boolean): ModelRequest[];
  /** Requests no case can claim (a target without a case id). */
  readonly strays: ModelRequest[];
  /** Requests that arrived for a case after it was judged (its client had gone). */
  readonly late: ModelRequest[];
  /** Connections with a request in progress: 0 when every request the gateway began has ended. */
  busy(): number;
  close(): Promise<void>;
}

/** What to answer: the bytes, and whether to close the connection after them. */
export type Respond = (req: ModelRequest) => { bytes: Buffer[]; close: boolean };

const echo: Respond = (req) => {
  const body = `{"got":${JSON.stringify(req.target)}}`;
  const head = `HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`;
  return { bytes: [Buffer.from(req.method === 'HEAD' ? head : head + body, 'latin1')], close: false };
};

/** The answer's pieces, each handed to the system before the next (so they may arrive as separate reads). */
async function write(socket: net.Socket, answer: { bytes: Buffer[]; close: boolean }): Promise<void> {
  for (const b of answer.bytes) {
    if (socket.destroyed) return;
    await new Promise<void>((resolve) => socket.write(b, () => resolve()));
  }
  if (answer.close) socket.end();
}

export async function startModel(respond: Respond = echo): Promise<Model> {
  const byCase = new Map<string, ModelRequest[]>();
  const strays: ModelRequest[] = [];
  const late: ModelRequest[] = [];
  const judged = new Set<string>();
  const inProgress = new Set<net.Socket>();
  const record = (q: ModelRequest): void => {
    const m = ATTRIBUTION.exec(q.target);
    if (m === null) return void strays.push(q);
    if (judged.has(m[1]!)) return void late.push(q);
    const list = byCase.get(m[1]!);
    if (list === undefined) byCase.set(m[1]!, [q]);
    else list.push(q);
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
    const p = new HTTPParser();
    p.initialize(HTTPParser.REQUEST, {}, 1024 * 1024, HTTPParser.kLenientNone);
    let current: ModelRequest | undefined;
    let pending: string[] = [];
    let pendingUrl = '';
    p[HTTPParser.kOnHeaders] = (h: string[], url: string) => {
      pending.push(...h);
      pendingUrl += url;
    };
    p[HTTPParser.kOnHeadersComplete] = (_ma: number, _mi: number, headers: string[] | undefined, method: number, url: string | undefined) => {
      current = { method: methods[method]!, target: url ?? pendingUrl, rawHeaders: headers ?? pending, body: '', complete: false };
      pending = [];
      pendingUrl = '';
      record(current);
      inProgress.add(socket);
      return 0;
    };
    p[HTTPParser.kOnBody] = (b: Buffer) => void (current!.body += Buffer.from(b).toString('latin1'));
    p[HTTPParser.kOnMessageComplete] = () => {
      const q = current!;
      q.complete = true;
      current = undefined;
      pending = [];
      pendingUrl = '';
      inProgress.delete(socket);
      void write(socket, respond(q));
    };
    p[HTTPParser.kOnExecute] = () => undefined;
    socket.on('data', (d: Buffer) => {
      const r = p.execute(d);
      if (typeof r !== 'number') {
        const error = (r as Error & { code?: string }).code ?? r.message;
        if (current !== undefined) current.error = error;
        else {
          // Refused in its head: recorded by the target of the last request line here, for its case.
          const lines = [...d.toString('latin1').matchAll(/(?:^|\r\n)([A-Z]+) (\S+) HTTP\/1\.[01]\r\n/g)];
          const last = lines[lines.length - 1];
          record({ method: last?.[1] ?? '', target: last?.[2] ?? '', rawHeaders: [], body: '', complete: false, error });
        }
        socket.destroy();
      }
    });
    socket.on('close', () => {
      sockets.delete(socket);
      inProgress.delete(socket);
      // Released, or the parser (and the socket its callbacks hold) stays alive.
      p.close();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    take(id, mayFollow = false) {
      const list = byCase.get(id) ?? [];
      byCase.delete(id);
      if (!mayFollow) judged.add(id);
      return list;
    },
    strays,
    late,
    busy: () => inProgress.size,
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
