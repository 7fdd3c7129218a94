/**
 * How much a proxied body's socket holds in the process before it says "wait": the write side's
 * high-water mark of the public connections (process/public-listeners.ts) and of the REST upstream
 * client's (upstream/http1-connection.ts).
 *
 * Node reads a socket 64 KiB at a time, and a stream's write answers false once what it holds,
 * the chunk just given included, reaches its high-water mark: at Node's 16 KiB every 64 KiB chunk
 * of a large body answered false even when the kernel took it whole in that very write, so every
 * chunk paused the other side and resumed it on the 'drain' a tick later (a `pause`, a `resume`,
 * a listener and a timer re-armed per chunk: 2.5x the raw relay's heap allocation per 1 MiB body,
 * load/README.md, large). Twice the read size lets a chunk through while at most one is still
 * queued; beyond that the socket's own backpressure holds, as before, at most about 128 KiB per
 * socket in the process (Envoy's per-connection buffer limit is 1 MiB).
 */
export const BODY_SOCKET_HIGH_WATER_MARK = 128 * 1024;
