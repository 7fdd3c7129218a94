/** A benchmark's child server: it listens on BENCH_PORT and `host`, says `listening <port>` on stdout, and closes on SIGTERM or SIGINT. */
import type { Server } from 'node:net';
export function serveBench(server: Server & { closeAllConnections?: () => void }, host = process.env.BENCH_HOST ?? '127.0.0.1'): void {
  server.listen(Number(process.env.BENCH_PORT ?? 0), host, () => {
    const address = server.address();
    process.stdout.write(`listening ${typeof address === 'object' && address ? address.port : '?'}\n`);
  });
  const stop = (): void => {
    server.close(() => process.exit(0));
    server.closeAllConnections?.();
    setTimeout(() => process.exit(0), 1000).unref();
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}
