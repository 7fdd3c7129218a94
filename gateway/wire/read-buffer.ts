/**
 * What a proxied body's socket reads into (`onread`), both sides: the upstream client's connections
 * (upstream/http1-connection.ts, as Node's `net.connect` offers it) and the lane's public HTTP/1.1
 * connections (edge/http1-lane.ts, through `readInto`: `net.Server` offers no `onread` for the
 * sockets it accepts).
 *
 * Why: Node reads every socket read into a new 64 KiB ArrayBuffer, sixteen per MiB of body, whose
 * memory only a full collection frees once a request that held it was promoted: they ran the worker's
 * mark-compacts (load/README.md, large). Here a socket reads a large body into a buffer of its own
 * and hands the read on as views of it; the buffer is read into again only when every byte of the
 * read was `passed` (written on to a socket that took them whole, nothing keeps them), else it is
 * left to its holders and another taken, as Node does for every read. Without one (idle, small
 * messages) a socket reads into the buffer all such share, whose bytes never outlive the read: a
 * small read is copied out, as small as it is, a large one into a buffer that becomes the socket's own.
 */
import net from 'node:net';

/** Node's read size, and the size of each buffer here. */
export const READ_BYTES = 64 * 1024;
/** Reads smaller than this are copied out (a head, a small body): no 64 KiB buffer for them. */
const COPY_READS_BELOW = 16 * 1024;
let sharedRead: Buffer | undefined;

/** A stream whose chunks may be views of a socket's read buffer: told which of them went on whole (`ReadBuffer.passed`). */
export interface PassesOn {
  passed(chunk: Buffer): void;
}

/** Whether `body` is told its chunks went on (the lane's streamed body is; others keep Node's reads). */
export const passesOn = (body: object): body is PassesOn => typeof (body as Partial<PassesOn>).passed === 'function';

/** One socket's read buffer and the rule for reading into it again. */
export class ReadBuffer {
  /** The socket's own buffer (`READ_BYTES`) while it reads something large; else reads go into the shared one. */
  private own: Buffer | undefined;
  /** Bytes of the last read handed on as views of `own`, and of those, the ones `passed` (-1: no such read). */
  private lent = -1;
  private passedBytes = 0;

  /**
   * The buffer the socket reads into next (`onread.buffer`): its own unless the last read's views are still
   * held (then, `large` still, a new one: the next read is likely large too) or it reads nothing large now.
   */
  next(large: boolean): Buffer {
    if (this.lent >= 0) {
      if (this.passedBytes !== this.lent) this.own = large ? Buffer.allocUnsafeSlow(READ_BYTES) : undefined;
      this.lent = -1;
    }
    if (!large) this.own = undefined;
    return this.own ?? (sharedRead ??= Buffer.allocUnsafeSlow(READ_BYTES));
  }

  /** The `n` bytes read into `buf` as the chunk to hand on: copied out when small, else a view of the socket's own buffer. */
  take(n: number, buf: Buffer): Buffer {
    // A small read, or a large one in the shared buffer (other sockets read into it next), is copied out.
    const own = n >= COPY_READS_BELOW && buf === this.own;
    const chunk = own ? buf : n < COPY_READS_BELOW ? Buffer.allocUnsafe(n) : (this.own = Buffer.allocUnsafeSlow(READ_BYTES));
    if (!own) buf.copy(chunk, 0, 0, n);
    if (n >= COPY_READS_BELOW) {
      this.lent = n;
      this.passedBytes = 0;
    }
    return n === chunk.length ? chunk : chunk.subarray(0, n);
  }

  /** `chunk` (a view of the socket's own buffer, or not) went on and is not kept. */
  passed(chunk: Buffer): void {
    if (this.lent >= 0 && chunk.buffer === this.own?.buffer) this.passedBytes += chunk.length;
  }
}

/** `chunk` was written to `to` just now: whole (in the kernel, nothing queued) or not. */
export const tookWhole = (to: net.Socket): boolean => to.writableLength === 0;

// ---- `onread` for an accepted socket ----------------------------------------------------------------

/**
 * Node keeps a socket's `onread` under three symbols of its own (lib/internal/stream_base_commons.js:
 * kBuffer, kBufferGen, kBufferCb) and reads into the buffer once its handle is told of it
 * (`useUserBuffer`). They are found once, by value, on a throwaway socket made with `onread`; if Node's
 * internals are not as expected, none is found and every socket keeps Node's own reads (`readInto` false).
 */
interface OnreadKeys {
  readonly buffer: symbol;
  readonly gen: symbol;
  readonly callback: symbol;
}

let keys: OnreadKeys | null | undefined;

function onreadKeys(): OnreadKeys | null {
  if (keys !== undefined) return keys;
  keys = null;
  try {
    const gen = (): Buffer => Buffer.alloc(1);
    const callback = (): boolean => true;
    const probe = new net.Socket({ onread: { buffer: gen, callback } } as net.SocketConstructorOpts);
    const own = probe as unknown as Record<symbol, unknown>;
    const symbols = Object.getOwnPropertySymbols(probe);
    const byValue = (v: unknown): symbol | undefined => symbols.find((s) => own[s] === v);
    const found = { buffer: symbols.find((s) => s.description === 'kBuffer' && own[s] === true), gen: byValue(gen), callback: byValue(callback) };
    probe.destroy();
    if (found.buffer !== undefined && found.gen !== undefined && found.callback !== undefined) keys = found as OnreadKeys;
  } catch {
    keys = null;
  }
  return keys;
}

/** What the handle of a cleartext TCP socket offers (Node's TCPWrap). */
interface UserBufferHandle {
  useUserBuffer(buf: Uint8Array): void;
}

/**
 * Read the accepted cleartext socket `socket` as `net.connect({ onread })` would: into `buffer()`, each
 * read handed to `callback(n, buf)` (false: stop reading) instead of the stream's 'data'. From here
 * `pause()` stops the socket's reads and `resume()` starts them (Node's rule for such sockets); bytes the
 * stream still holds are emitted as before. False (nothing changed): not a plain TCP socket, already
 * reading so, or Node's internals not as expected.
 */
export function readInto(socket: net.Socket, buffer: () => Buffer, callback: (n: number, buf: Buffer) => boolean): boolean {
  const k = onreadKeys();
  const handle = (socket as unknown as { _handle?: Partial<UserBufferHandle> | null })._handle;
  const own = socket as unknown as Record<symbol, unknown>;
  if (k === null || handle == null || typeof handle.useUserBuffer !== 'function' || (socket as { encrypted?: boolean }).encrypted === true || own[k.buffer]) return false;
  try {
    const first = buffer();
    own[k.gen] = buffer;
    own[k.callback] = callback;
    own[k.buffer] = first;
    handle.useUserBuffer(first);
    return true;
  } catch {
    own[k.gen] = null;
    own[k.callback] = null;
    own[k.buffer] = null;
    return false;
  }
}
