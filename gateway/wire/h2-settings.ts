/**
 * HTTP/2 settings of the gRPC data plane, chosen rather than inherited from Node's defaults
 * (which are tuned for browsers: a 64 KiB connection window, 10 MB of session memory).
 *
 * Flow control: Node acknowledges connection-level data as it arrives and stream-level data only
 * as the proxy reads it, so a stream's window is what it may hold unread in the gateway, and only the
 * number of streams bounds a connection (a stream paused by backpressure still takes its whole window:
 * 100 streams held 100 MiB at 1 MiB windows, test/gateway/edge/h2-held-bytes.test.ts). 256 KiB per
 * stream still lets a large message cross loopback without waiting (the WINDOW_UPDATE goes out at half
 * the window, while the rest is in flight); the 16 MiB connection window keeps many such streams from
 * queueing behind each other's WINDOW_UPDATEs.
 *
 * What one client connection can make the gateway hold (Envoy's per-connection buffer limit is the
 * reference; nginx allows 128 streams, haproxy 100): MAX_CONCURRENT_STREAMS × (STREAM_WINDOW_BYTES unread +
 * STREAM_BUFFER_BYTES queued to it + one read past the mark), 72 MiB, and over gRPC the upstream stream's
 * window again per stream.
 */
import type { ClientSessionOptions, ServerOptions, Settings } from 'node:http2';

const MiB = 1024 * 1024;

export const STREAM_WINDOW_BYTES = 256 * 1024;
export const CONNECTION_WINDOW_BYTES = 16 * MiB;
/**
 * After a body chunk was written to an HTTP/2 stream (`ok`: what its write answered): whether to wait
 * for its 'drain' before writing more. Node fixes an HTTP/2 stream's high-water mark at 64 KiB (no option
 * sets it), and a write completes only once the session has sent it, an immediate later, while one poll
 * of a socket reads up to 32 × 64 KiB: a 1 MiB message queued whole before the first write completed, so
 * every 64 KiB answered false and the other side was paused, and resumed on a 'drain', 16 times per MiB
 * (load/README.md, large). The mark is 256 KiB: 4 pauses per MiB instead of 16, while a connection's
 * MAX_CONCURRENT_STREAMS streams each read slowly hold at most 256 KiB apiece (Envoy's per-stream limit,
 * 1 MiB, would let one hostile client pin 128 MiB here).
 */
export const STREAM_BUFFER_BYTES = 256 * 1024;
export const streamFull = (ok: boolean, stream: { readonly writableLength: number }): boolean => !ok && stream.writableLength >= STREAM_BUFFER_BYTES;
/** Envoy's default request-header limit is 60 KiB; gRPC clients default to 8 KiB of metadata. */
export const MAX_HEADER_LIST_BYTES = 64 * 1024;
/**
 * Per client connection (nginx's http2_max_concurrent_streams): what one connection can make the gateway
 * hold is this many streams' windows and marks (above). A client with more calls in flight queues them on
 * its side (HTTP/2 clients hold a stream past the peer's limit until one ends).
 */
export const MAX_CONCURRENT_STREAMS = 128;
/**
 * Node refuses new streams (ENHANCE_YOUR_CALM) once a session's queued output, header tables and
 * unacknowledged frames pass this many MB. 10 (the default) is reached by a handful of 4 MB
 * messages in flight; backpressure bounds the real figure, this is only the safety valve.
 */
const MAX_SESSION_MEMORY_MB = 128;

const SETTINGS: Settings = {
  enablePush: false,
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxHeaderListSize: MAX_HEADER_LIST_BYTES,
};

/** The public h2c listener (and the optional --grpc-port). */
export const SERVER_OPTIONS: ServerOptions = {
  settings: { ...SETTINGS, maxConcurrentStreams: MAX_CONCURRENT_STREAMS },
  maxSessionMemory: MAX_SESSION_MEMORY_MB,
};

/** Upstream sessions (the gateway as a client). */
export const UPSTREAM_SESSION_OPTIONS: ClientSessionOptions = {
  settings: SETTINGS,
  maxSessionMemory: MAX_SESSION_MEMORY_MB,
  // Assumed until the upstream's SETTINGS arrive; grpc servers advertise their own.
  peerMaxConcurrentStreams: MAX_CONCURRENT_STREAMS,
};

/**
 * Upstream sessions per upstream, and how many active streams a session carries before another
 * is opened (or fewer, when the upstream advertises a lower SETTINGS_MAX_CONCURRENT_STREAMS).
 * One well-filled session batches many frames per write; more sessions keep one busy connection
 * from serialising every call. 100 is the usual server stream limit. Measured with `npm run bench -- grpc`
 * (64 calls): a new session every 8 streams gave 0.45x direct against 0.81x at 100, because lightly
 * loaded connections meet Nagle on upstreams that leave it on (grpc-js servers do; Go servers do
 * not). Capped by the breaker's max_connections.
 */
export const MAX_SESSIONS_PER_UPSTREAM = 4;
export const STREAMS_BEFORE_NEW_SESSION = 100;
/**
 * A client session with no stream for this long gets GOAWAY (edge/h2-server.ts). This is also what
 * ends connections a client half-closed: Node's HTTP/2 server never notices a FIN.
 */
export const CLIENT_SESSION_IDLE_MS = 5 * 60_000;
/** An upstream session with no stream for this long is closed (routes come and go). */
export const UPSTREAM_SESSION_IDLE_MS = 5 * 60_000;
