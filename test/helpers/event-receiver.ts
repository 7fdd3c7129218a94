/**
 * A CloudEvents receiver on 127.0.0.1 for the payload logging tests: every POST is parsed with the
 * CloudEvents SDK for JavaScript (`cloudevents` on npm, `HTTP.toEvent`), the reference for the
 * format; a POST it cannot parse is kept as a failure. What it answers is set by `mode`: `ok` (200),
 * `unavailable` (503), `refuse` (400), `hang` (reads the event, never answers).
 */
import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { HTTP, type CloudEvent } from 'cloudevents';
import { waitUntil } from './wait.js';

export type ReceiverMode = 'ok' | 'unavailable' | 'refuse' | 'hang';

/** One event as received: the SDK's event, the headers as sent, the body bytes. */
export interface Received {
  readonly event: CloudEvent<unknown>;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  readonly at: number;
}

export interface EventReceiver {
  readonly url: string;
  /** Every event parsed and answered 2xx, in order of arrival (duplicates included). */
  readonly events: Received[];
  /** POSTs received in any mode (answered or not). */
  posts: number;
  /** Connections open to it now. */
  openConnections(): number;
  /** POSTs the SDK could not read as a CloudEvent. */
  readonly malformed: string[];
  mode: ReceiverMode;
  /** The accepted events of `type` (ce-type), duplicates by ce-id removed. */
  unique(type?: string): Received[];
  /** Accepted deliveries whose ce-id came before. */
  duplicates(): number;
  /** Wait until `cond` holds of the accepted events (bounded). */
  until(cond: (events: Received[]) => boolean, ms?: number): Promise<void>;
  close(): Promise<void>;
}

export async function startEventReceiver(mode: ReceiverMode = 'ok'): Promise<EventReceiver> {
  const sockets = new Set<Socket>();
  const r: EventReceiver = {
    url: '',
    events: [],
    posts: 0,
    malformed: [],
    openConnections: () => sockets.size,
    mode,
    unique(type) {
      const seen = new Set<string>();
      return this.events.filter((e) => (type === undefined || e.event.type === type) && !seen.has(e.event.id) && (seen.add(e.event.id), true));
    },
    duplicates() {
      return this.events.length - new Set(this.events.map((e) => e.event.id)).size;
    },
    until: (cond, ms = 30_000) => waitUntil(async () => cond(r.events), ms),
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close').catch(() => undefined);
    },
  };
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      r.posts++;
      const body = Buffer.concat(chunks);
      const m = r.mode;
      if (m === 'hang') return;
      if (m === 'unavailable' || m === 'refuse') {
        res.writeHead(m === 'unavailable' ? 503 : 400).end();
        return;
      }
      try {
        const event = HTTP.toEvent({ headers: req.headers as Record<string, string>, body }) as CloudEvent<unknown>;
        r.events.push({ event, headers: req.headers, body, at: Date.now() });
        res.writeHead(202).end();
      } catch (err) {
        r.malformed.push(`${(err as Error).message}: ${JSON.stringify(req.headers)}`);
        res.writeHead(400).end();
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  (r as { url: string }).url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`;
  return r;
}

/** The JSON of a decision record (ce-type io.seldon.gateway.decision). */
export function decisionOf(r: Received): Record<string, unknown> & { why: Record<string, unknown> } {
  return JSON.parse(r.body.toString()) as Record<string, unknown> & { why: Record<string, unknown> };
}
