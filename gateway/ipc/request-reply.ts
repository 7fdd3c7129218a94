/**
 * Typed request and reply over Node's IPC channel (`process.send` between a cluster primary and its
 * workers): a named channel, ids, a timeout, errors carried back as errors, and the answering side.
 * The gateway's three exchanges use it: workers asking the primary's in-memory token and rate-limit
 * store (auth/stores.ts) and sending it bandit rewards (steer/reward-ipc.ts), and the primary
 * gathering its workers' metrics (observe/observed-cluster.ts).
 *
 * A request that gets no answer within the timeout, or cannot be sent, rejects: the caller fails as
 * it would when its store is away.
 */
import type { Serializable } from 'node:child_process';
import cluster, { type Worker } from 'node:cluster';

/** A kind of request and its reply. The name tells its messages from every other IPC message. */
export interface Channel<Req, Res> {
  readonly name: string;
  /** Types only: never set. */
  readonly types?: { readonly request: Req; readonly reply: Res };
}

export const channel = <Req, Res>(name: string): Channel<Req, Res> => ({ name });

/** The other end of an IPC link, as a message is sent to it. */
export interface Peer {
  /** Calls back with an error when the message could not be handed to the channel. */
  send(message: unknown, sent: (error: Error | null) => void): void;
  readonly connected: boolean;
}

/** Where messages arrive from peers; `listen` returns the function that stops listening. */
export interface Inbox {
  listen(onMessage: (message: unknown, from: Peer) => void): () => void;
}

/** In a worker (or any forked child): its parent. */
export const parent: Peer = {
  send(message, sent) {
    if (!process.send || !process.connected) return sent(new Error('no IPC channel to the parent process'));
    process.send(message, undefined, undefined, (error: Error | null) => sent(error));
  },
  get connected() {
    return process.send !== undefined && process.connected;
  },
};

/** In a worker: the messages of its parent. */
export const fromParent: Inbox = {
  listen(onMessage) {
    const listener = (message: unknown): void => onMessage(message, parent);
    process.on('message', listener);
    return () => process.off('message', listener);
  },
};

/** In the primary: one cluster worker. */
export function worker(w: Worker): Peer {
  return {
    send(message, sent) {
      try {
        w.send(message as Serializable, undefined, undefined, (error: Error | null) => sent(error));
      } catch (err) {
        // An exiting worker's channel throws at once.
        sent(err instanceof Error ? err : new Error(String(err)));
      }
    },
    get connected() {
      return w.isConnected();
    },
  };
}

/** In the primary: the messages of every worker, each with the worker that sent it. */
export const fromWorkers: Inbox = {
  listen(onMessage) {
    const listener = (w: Worker, message: unknown): void => onMessage(message, worker(w));
    cluster.on('message', listener);
    return () => cluster.off('message', listener);
  },
};

interface RequestMessage<Req> {
  readonly type: string;
  readonly id: number;
  readonly body: Req;
}
type ReplyMessage<Res> = { readonly type: string; readonly id: number; readonly value: Res } | { readonly type: string; readonly id: number; readonly error: string };

const replyType = (c: Channel<unknown, unknown>): string => `${c.name}:reply`;
const isMessage = (m: unknown, type: string): m is { type: string; id: number } => typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type;
const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

interface Pending<Res> {
  readonly resolve: (value: Res) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** The asking side of a channel: requests to any peer of `inbox`, replies matched by id. */
export class Requester<Req, Res> {
  private next = 1;
  private readonly pending = new Map<number, Pending<Res>>();
  private readonly stop: () => void;
  private readonly channel: Channel<Req, Res>;
  private readonly timeoutMs: number;

  constructor(channel: Channel<Req, Res>, inbox: Inbox, timeoutMs: number) {
    this.channel = channel;
    this.timeoutMs = timeoutMs;
    const type = replyType(channel);
    this.stop = inbox.listen((message) => {
      if (!isMessage(message, type)) return;
      const reply = message as ReplyMessage<Res>;
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      clearTimeout(p.timer);
      if ('error' in reply) p.reject(new Error(reply.error));
      else p.resolve(reply.value);
    });
  }

  /** The peer's reply; rejects when it cannot be sent, the peer answers with an error, or nothing comes within the timeout. */
  request(to: Peer, body: Req): Promise<Res> {
    if (!to.connected) return Promise.reject(new Error('no IPC channel to the peer'));
    const id = this.next++;
    return new Promise<Res>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`no answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer });
      const message: RequestMessage<Req> = { type: this.channel.name, id, body };
      to.send(message, (error) => {
        if (!error || !this.pending.delete(id)) return;
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  /** Stop listening; requests still waiting are dropped (their promises never settle). */
  close(): void {
    this.stop();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }
}

/** The answering side: every request of `channel` arriving in `inbox` is answered with `handle`'s value or its error. Returns the stop function. */
export function serve<Req, Res>(channel: Channel<Req, Res>, inbox: Inbox, handle: (body: Req, from: Peer) => Res | Promise<Res>): () => void {
  const type = replyType(channel);
  return inbox.listen((message, from) => {
    if (!isMessage(message, channel.name)) return;
    const { id, body } = message as RequestMessage<Req>;
    const reply = (r: ReplyMessage<Res>): void => {
      if (from.connected) from.send(r, () => {});
    };
    new Promise<Res>((resolve) => resolve(handle(body, from))).then(
      (value) => reply({ type, id, value }),
      (err: unknown) => reply({ type, id, error: messageOf(err) }),
    );
  });
}
