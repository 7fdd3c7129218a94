/**
 * How much a proxied body's socket holds in the process before it says "wait", set once per socket as
 * it is made: the public connections' high-water mark, both sides (process/public-listeners.ts: a
 * net.Server's `highWaterMark` is its accepted sockets' readable and writable one), and the write
 * side of the REST upstream client's plain connections (upstream/http1-connection.ts). TLS sockets,
 * either way, keep Node's default.
 *
 * Node reads a socket 64 KiB at a time, and a stream's write answers false once what it holds,
 * the chunk just given included, reaches its high-water mark: at Node's 16 KiB every 64 KiB chunk
 * of a large body answered false even when the kernel took it whole in that very write, so every
 * chunk paused the other side and resumed it on the 'drain' a tick later (a `pause`, a `resume`,
 * a listener and a timer re-armed per chunk: 2.5x the raw relay's heap allocation per 1 MiB body,
 * load/README.md, large). Twice the read size lets a chunk through while at most one is still
 * queued; beyond that the socket's own backpressure holds, as before, at most about 128 KiB per
 * socket in the process (Envoy's per-connection buffer limit is 1 MiB): a client that does not read
 * holds its model back (test/gateway/rest/answer-backpressure.test.ts).
 */
export const BODY_SOCKET_HIGH_WATER_MARK = 128 * 1024;
