/**
 * A gRPC call's listeners on its client's stream, one set for every call: the call rides on the
 * stream it listens to, so listening costs no closure per call (there were six). Off they come
 * when the call is over (`stopListening`), so the call is not kept alive by its stream.
 */
import type { ServerHttp2Stream } from 'node:http2';

/** What the client's stream tells its call (grpc/call.ts). */
export interface ClientStreamOwner {
  clientData(chunk: Buffer): void;
  clientEnded(): void;
  clientClosed(): void;
  /** The client drained what it was sent: the upstream may be read on. */
  upstreamResumed(): void;
  trailersWanted(): void;
  /** No bytes either way for the idle timeout. */
  idle(): void;
}

const OWNER = Symbol('grpc call');
type Carrying = ServerHttp2Stream & { [OWNER]?: ClientStreamOwner | undefined };

/** The client's close; its data and end unless its request was read whole already; its idle timeout when `idleMs` > 0. */
export function listenToClient(c: ServerHttp2Stream, owner: ClientStreamOwner, readsRequest: boolean, idleMs: number): void {
  (c as Carrying)[OWNER] = owner;
  c.on('close', onClientClose);
  if (readsRequest) {
    c.on('data', onClientData);
    c.once('end', onClientEnd);
  }
  if (idleMs > 0) c.setTimeout(idleMs, onIdle);
}

/** Node asks for the trailers once the answer's body is written (a stream responded `waitForTrailers`). */
export function awaitTrailersWanted(c: ServerHttp2Stream): void {
  c.once('wantTrailers', onWantTrailers);
}

/** The client is slower than the model: the upstream is read on once it drained. */
export function awaitClientDrain(c: ServerHttp2Stream): void {
  c.once('drain', resumeUpstream);
}

export function stopListening(c: ServerHttp2Stream): void {
  c.off('close', onClientClose);
  c.off('data', onClientData);
  c.off('end', onClientEnd);
  c.off('timeout', onIdle);
  c.off('drain', resumeUpstream);
}

function onClientData(this: Carrying, chunk: Buffer): void {
  this[OWNER]?.clientData(chunk);
}
function onClientEnd(this: Carrying): void {
  this[OWNER]?.clientEnded();
}
function onClientClose(this: Carrying): void {
  this[OWNER]?.clientClosed();
}
function resumeUpstream(this: Carrying): void {
  this[OWNER]?.upstreamResumed();
}
function onWantTrailers(this: Carrying): void {
  this[OWNER]?.trailersWanted();
}
function onIdle(this: Carrying): void {
  this[OWNER]?.idle();
}
