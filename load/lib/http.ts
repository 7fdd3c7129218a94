/**
 * Small HTTP helpers of the benchmarks' setup: a free port on 127.0.0.1, the status of one bounded
 * request (0 when it fails), and a model in this process.
 */
import http from 'node:http';
import http2 from 'node:http2';
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

/**
 * One POST over HTTP/2 with prior knowledge (h2c) to `url`: its status, its `grpc-status` (header or trailer) and the
 * answer's length; status 0 on any failure or after 5 s.
 */
export function h2Post(url: string, body: string | Buffer, headers: Record<string, string>): Promise<{ status: number; grpcStatus?: string; bytes: number }> {
  const u = new URL(url);
  return new Promise((resolve) => {
    const session = http2.connect(u.origin);
    const fail = (): void => {
      session.destroy();
      resolve({ status: 0, bytes: 0 });
    };
    const timer = setTimeout(fail, 5000);
    session.on('error', fail);
    const req = session.request({ ':method': 'POST', ':path': u.pathname, ...headers });
    let status = 0;
    let grpcStatus: string | undefined;
    let bytes = 0;
    req.on('response', (h) => {
      status = Number(h[':status']);
      grpcStatus = h['grpc-status'] as string | undefined;
    });
    req.on('trailers', (t) => (grpcStatus = (t['grpc-status'] as string | undefined) ?? grpcStatus));
    req.on('data', (c: Buffer) => (bytes += c.length));
    req.on('error', fail);
    req.on('end', () => {
      clearTimeout(timer);
      session.close();
      resolve({ status, ...(grpcStatus !== undefined ? { grpcStatus } : {}), bytes });
    });
    req.end(body);
  });
}

/** A model in this process (its CPU is not the measured process tree's): every request read, then answered 200 with `body` as JSON. */
export async function startModel(body: string): Promise<{ port: number; close(): void }> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, close: () => server.close() };
}

/** A JSON tensor of about `bytes` bytes, as a model answers (floats of 6 decimals). */
export function tensor(bytes: number): Buffer {
  const values: number[] = [];
  for (let i = 0, size = 40; size < bytes; i++) {
    values.push(Math.round(Math.sin(i * 0.37) * Math.cos(i * 0.011) * 1e6) / 1e6);
    size += String(values[i]).length + 1;
  }
  return Buffer.from(JSON.stringify({ data: { names: ['t'], ndarray: [values] }, meta: {} }));
}
