/**
 * A translated body's JSON written straight into one Buffer. The body is pieces: short text (keys, names,
 * ids) gathered into one string, a tensor's elements (one long string, ASCII when it holds no strings), the
 * default names (already bytes). Joining them into one string and encoding that cost a flattening copy and a
 * UTF-8 pass over megabytes of digits; here each long piece is copied once into a buffer of the exact size
 * (latin1: one byte a character, which for ASCII is its UTF-8). Pure.
 */

/** Below this many characters an ASCII piece joins the text around it (one string, one Buffer.from: a small body's cheapest). */
const SHORT = 1024;

type Piece = string | Buffer | { readonly size: number; readonly fill: (out: Buffer, at: number) => void };

export class JsonOut {
  /** Text since the last long piece. */
  private text = '';
  /** The long pieces and the text before each: strings written as UTF-8, ASCII strings (in `ascii`) as latin1, buffers copied. */
  private readonly parts: Piece[] = [];
  private readonly ascii: boolean[] = [];

  /** Any text (keys, names, ids, strings' JSON): written as UTF-8. */
  add(s: string): this {
    this.text += s;
    return this;
  }

  /** Text known to be ASCII (numbers, booleans, punctuation): a long one is copied as it is, never encoded. */
  addAscii(s: string): this {
    if (s.length < SHORT) this.text += s;
    else this.piece(s, true);
    return this;
  }

  /** Bytes already written (the default names): ASCII. */
  addBytes(b: Buffer): this {
    if (b.length < SHORT) this.text += b.toString('latin1');
    else this.piece(b, false);
    return this;
  }

  /** `size` ASCII bytes that `fill` writes into the body at `at` when it is finished: no buffer of their own. */
  addFilled(size: number, fill: (out: Buffer, at: number) => void): this {
    if (size < SHORT) {
      const b = Buffer.allocUnsafe(size);
      fill(b, 0);
      this.text += b.toString('latin1');
    } else this.piece({ size, fill }, false);
    return this;
  }

  private piece(p: Piece, ascii: boolean): void {
    if (this.text !== '') {
      this.parts.push(this.text);
      this.ascii.push(false);
      this.text = '';
    }
    this.parts.push(p);
    this.ascii.push(ascii);
  }

  /** The body, in one Buffer of its exact size. */
  finish(): Buffer {
    const parts = this.parts;
    if (parts.length === 0) return Buffer.from(this.text);
    if (this.text !== '') {
      parts.push(this.text);
      this.ascii.push(false);
    }
    let size = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      size += typeof p !== 'string' ? (Buffer.isBuffer(p) ? p.length : p.size) : this.ascii[i] ? p.length : Buffer.byteLength(p);
    }
    const out = Buffer.allocUnsafe(size);
    let at = 0;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (Buffer.isBuffer(p)) at += p.copy(out, at);
      else if (typeof p !== 'string') {
        p.fill(out, at);
        at += p.size;
      } else at += out.write(p, at, this.ascii[i] ? 'latin1' : 'utf8');
    }
    return out;
  }
}
