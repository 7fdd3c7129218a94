/**
 * The admin port's bearer token (`--admin-token-file`): read from a file, such as a mounted
 * Kubernetes Secret, and read again when it changes, so a rotated Secret takes effect without a
 * restart.
 *
 * - The file holds the token alone; surrounding whitespace (a trailing newline) is trimmed. It must
 *   be at least 16 visible ASCII characters with no space: a short token can be guessed, and a
 *   token a header cannot carry could never match.
 * - The token itself is not kept: only its SHA-256 (compared with the presented token's SHA-256 in
 *   constant time, so neither the bytes nor the length leak through timing) and a key derived from
 *   it that signs browser sessions (login.ts). Rotating the token ends every session.
 * - The file is read again at most once a second, when a request needs the token. A file that is
 *   missing or invalid at start is an error; later, the last good token stays in force and the
 *   problem is reported once (a Secret being rewritten is briefly in between).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';

const MIN_LENGTH = 16;
const RELOAD_EVERY_MS = 1000;
/** A browser session lasts this long, at most. */
export const SESSION_SECONDS = 12 * 3600;

interface Secret {
  /** SHA-256 of the token. */
  readonly digest: Buffer;
  /** HMAC key for session cookies, derived from the token. */
  readonly sessionKey: Buffer;
}

const sha256 = (s: string | Buffer): Buffer => createHash('sha256').update(s).digest();

/** The token in `text`, or why it is not one. Never includes the token in the message. */
function parseToken(text: string): { token: string } | { problem: string } {
  const token = text.trim();
  if (token === '') return { problem: 'the file is empty' };
  if (!/^[\x21-\x7e]+$/.test(token)) return { problem: 'the token must be visible ASCII characters without spaces' };
  if (token.length < MIN_LENGTH) return { problem: `the token is shorter than ${MIN_LENGTH} characters (use e.g. \`openssl rand -hex 32\`)` };
  return { token };
}

function secretOf(token: string): Secret {
  return { digest: sha256(token), sessionKey: createHmac('sha256', token).update('seldon-gateway admin session key').digest() };
}

export interface TokenLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export class AdminToken {
  private checkedAt: number;
  private reloading: Promise<void> | undefined;
  /** The problem last reported, so that a lasting one is logged once. */
  private reported: string | undefined;

  private constructor(
    readonly path: string,
    private secret: Secret,
    private readonly log: TokenLog | undefined,
    private readonly now: () => number,
  ) {
    this.checkedAt = now();
  }

  /** Read the token file; throws a message naming the file (never the token) when there is no usable token. */
  static async load(path: string, options: { log?: TokenLog; now?: () => number } = {}): Promise<AdminToken> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      throw new Error(`--admin-token-file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
    }
    const parsed = parseToken(text);
    if ('problem' in parsed) throw new Error(`--admin-token-file ${path}: ${parsed.problem}`);
    return new AdminToken(path, secretOf(parsed.token), options.log, options.now ?? Date.now);
  }

  /** True when `presented` is the current token. */
  async matches(presented: string): Promise<boolean> {
    await this.fresh();
    return timingSafeEqual(sha256(presented), this.secret.digest);
  }

  /** A session cookie value for the current token, valid for SESSION_SECONDS: `<expiry>.<signature>`. */
  session(): string {
    const expires = Math.floor(this.now() / 1000) + SESSION_SECONDS;
    return `${expires}.${this.sign(expires)}`;
  }

  /** True when `value` is a session this token signed and it has not expired. */
  async validSession(value: string): Promise<boolean> {
    const m = /^([0-9]{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!m) return false;
    const expires = Number(m[1]);
    const now = Math.floor(this.now() / 1000);
    if (expires <= now || expires > now + SESSION_SECONDS) return false;
    await this.fresh();
    return timingSafeEqual(Buffer.from(m[2]!), Buffer.from(this.sign(expires)));
  }

  private sign(expires: number): string {
    return createHmac('sha256', this.secret.sessionKey).update(String(expires)).digest('base64url');
  }

  /** Read the file again if it was last read more than a second ago (one read at a time). */
  private fresh(): Promise<void> {
    if (this.reloading) return this.reloading;
    if (this.now() - this.checkedAt < RELOAD_EVERY_MS) return Promise.resolve();
    this.checkedAt = this.now();
    this.reloading = this.reload().finally(() => (this.reloading = undefined));
    return this.reloading;
  }

  private async reload(): Promise<void> {
    let problem: string;
    try {
      const parsed = parseToken(await readFile(this.path, 'utf8'));
      if ('token' in parsed) {
        const next = secretOf(parsed.token);
        if (!next.digest.equals(this.secret.digest)) {
          this.secret = next;
          this.log?.info({ file: this.path }, 'admin token changed: the new token is in force, browser sessions of the old one end');
        }
        if (this.reported !== undefined) this.log?.info({ file: this.path }, 'admin token file readable again');
        this.reported = undefined;
        return;
      }
      problem = parsed.problem;
    } catch (err) {
      problem = `cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
    }
    if (problem !== this.reported) this.log?.warn({ file: this.path, problem }, 'admin token file unusable: the last good token stays in force');
    this.reported = problem;
  }
}
