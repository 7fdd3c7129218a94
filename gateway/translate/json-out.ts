/**
 * A translated body's JSON written straight into one Buffer. The body is pieces: short text (keys, names,
 * ids) gathered into one string, a tensor's elements (one long string, ASCII when it holds no strings), the
 * default names (already bytes). Joining them into one string and encoding that cost a flattening copy and a
 * UTF-8 pass over megabytes of digits; here each long piece is copied once into a buffer of the exact size
 * (ASCII written as latin1: one byte a character, its UTF-8 without the encoder's pass). Pure.
 */

/** Below this many characters an ASCII piece joins the text around it (one string, one Buffer.from: a small body's cheapest). */
const SHORT = 1024;

type Piece = string | Buffer | { readonly size: number; readonly fill: (out: Buffer, at: number) => void };

export class JsonOut {
  /** Text since the last long piece. */
  private text = '';
  /** The long pieces and the text before each (strings written as UTF-8, buffers copied, the rest filled in place); none for a small body. */
  private parts: Piece[] | null = null;

  /** Any text (keys, names, ids, strings' JSON): written as UTF-8. */
  add(s: string): this {
    this.text += s;
    return this;
  }

  /** Text known to be ASCII (numbers, booleans, punctuation): a long one is copied as it is, never encoded. */
  addAscii(s: string): this {
    if (s.length < SHORT) this.text += s;
    else this.piece({ size: s.length, fill: (out: Buffer, at: number) => out.write(s, at, 'latin1') });
    return this;
  }

  /** Bytes already written (the default names): ASCII. */
  addBytes(b: Buffer): this {
    if (b.length < SHORT) this.text += b.toString('latin1');
    else this.piece(b);
    return this;
  }

  /** `size` ASCII bytes that `fill` writes into the body at `at` when it is finished: no buffer of their own. */
  addFilled(size: number, fill: (out: Buffer, at: number) => void): this {
    if (size < SHORT) {
      const b = Buffer.allocUnsafe(size);
      fill(b, 0);
      this.text += b.toString('latin1');
    } else this.piece({ size, fill });
    return this;
  }

  private piece(p: Piece): void {
    const parts = (this.parts ??= []);
    if (this.text !== '') parts.push(this.text);
    this.text = '';
    parts.push(p);
  }

  /** The body, in one Buffer of its exact size. */
  finish(): Buffer {
    const parts = this.parts;
    if (parts === null) return Buffer.from(this.text);
    if (this.text !== '') parts.push(this.text);
    let size = 0;
    for (const p of parts) size += typeof p === 'string' ? Buffer.byteLength(p) : Buffer.isBuffer(p) ? p.length : p.size;
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (const p of parts) {
      if (typeof p === 'string') at += out.write(p, at, 'utf8');
      else if (Buffer.isBuffer(p)) at += p.copy(out, at);
      else {
        p.fill(out, at);
        at += p.size;
      }
    }
    return out;
  }
}
