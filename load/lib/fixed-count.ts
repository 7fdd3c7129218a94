/**
 * A fixed number of HTTP/1.1 requests, closed loop, on raw keep-alive sockets: `conns` connections
 * each send one request, read its answer (Content-Length framed) and send the next, until `total`
 * answers have arrived. What the syscalls scenario counts syscalls over: the count of requests is
 * exact, whatever the speed of the target (a tracer slows it several times).
 */
import net from 'node:net';

export interface CountedRun {
  readonly answered: number;
  readonly non200: number;
  readonly seconds: number;
}

/** Where the answer in `b` (from `from`) ends, or -1 while it is incomplete. */
function answerEnd(b: Buffer, from: number): number {
  const end = b.indexOf('\r\n\r\n', from);
  if (end < 0) return -1;
  const head = b.toString('latin1', from, end).toLowerCase();
  const at = head.indexOf('\r\ncontent-length:');
  if (at < 0) throw new Error(`an answer without Content-Length: ${JSON.stringify(head.slice(0, 200))}`);
  const total = end + 4 + parseInt(head.slice(at + 17), 10);
  return b.length >= total ? total : -1;
}

export function fixedCount(port: number, request: Buffer, conns: number, total: number, timeoutMs = 600_000): Promise<CountedRun> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = 0;
    let non200 = 0;
    let open = 0;
    const t0 = performance.now();
    const sockets: net.Socket[] = [];
    const timer = setTimeout(() => finish(new Error(`${answered} of ${total} answers after ${timeoutMs} ms`)), timeoutMs);
    const finish = (err?: Error): void => {
      clearTimeout(timer);
      for (const s of sockets) s.destroy();
      if (err) reject(err);
      else resolve({ answered, non200, seconds: (performance.now() - t0) / 1000 });
    };
    const one = (): void => {
      const s = net.connect(port, '127.0.0.1');
      sockets.push(s);
      s.setNoDelay(true);
      open++;
      let pending: Buffer | null = null;
      const send = (): void => {
        if (sent >= total) {
          if (--open === 0) finish();
          return;
        }
        sent++;
        s.write(request);
      };
      s.on('connect', send);
      s.on('data', (chunk: Buffer) => {
        let b = pending === null ? chunk : Buffer.concat([pending, chunk]);
        pending = null;
        for (;;) {
          const end = answerEnd(b, 0);
          if (end < 0) {
            if (b.length > 0) pending = b;
            return;
          }
          answered++;
          if (b[9] !== 0x32 || b[10] !== 0x30 || b[11] !== 0x30) non200++;
          b = b.subarray(end);
          send();
        }
      });
      s.on('error', (err) => finish(err));
    };
    for (let i = 0; i < conns; i++) one();
  });
}
