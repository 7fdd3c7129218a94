/**
 * Small HTTP helpers of the benchmarks' setup (never on the measured path): a free port on
 * 127.0.0.1 and the status of one bounded request (0 when it fails).
 */
import { createServer, type AddressInfo } from 'node:net';

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });

/** The status of one request (body read and dropped), or 0 on any failure or after 2 s. */
export async function httpStatus(url: string, init: RequestInit = {}): Promise<number> {
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return 0;
  }
}

/** The status of a JSON POST of `body`. */
export const postStatus = (url: string, body: string, headers: Record<string, string> = {}): Promise<number> =>
  httpStatus(url, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
