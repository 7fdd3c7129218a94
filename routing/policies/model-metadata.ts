/**
 * A v2 model's metadata (`GET /v2/models/<m>`, gRPC `ModelMetadata`) as the protocol translation
 * uses it (docs/protocol-translation.md#the-models-metadata): what a translated input is named and
 * typed by, and the cache's decisions (when to fetch, refresh and retry, what to forget). Pure: the
 * answer is read here once a transport parsed it, every time is given (`now`), nothing is fetched.
 *
 * Kept per (deployment, predictor, model name, version): the key's owner is the predictor with the
 * model and version it asks, and `retain` drops every entry whose predictor left the table or asks
 * another model or version now (docs/architecture.md#lifetimes).
 * A model's answer is trusted only as far as it is checked: a datatype that is not v2's, more
 * inputs than MAX_INPUTS, a name longer than MAX_NAME are a reason to ignore it, never guessed past.
 */
import { V2_DATATYPES, type V2Datatype } from './protocol.js';

/** An input as the model declares it. */
export interface DeclaredInput {
  readonly name: string;
  readonly datatype: V2Datatype;
}

/** Most inputs a metadata answer may declare (MLServer's models declare a handful). */
export const MAX_INPUTS = 1024;
/** Longest input name taken from a metadata answer. */
export const MAX_NAME = 256;

export type MetadataRead = { readonly ok: true; readonly inputs: readonly DeclaredInput[] } | { readonly ok: false; readonly reason: string };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A metadata answer as JSON holds it (gRPC's reader gives the same form) → its declared inputs.
 * An input without a datatype (MLServer's metadata may omit `inputs`, or list one without it) declares nothing.
 */
export function readModelMetadata(doc: unknown): MetadataRead {
  if (!isObj(doc)) return { ok: false, reason: 'the metadata is not a JSON object' };
  const inputs = doc.inputs;
  if (inputs === undefined || inputs === null) return { ok: true, inputs: [] };
  if (!Array.isArray(inputs)) return { ok: false, reason: 'its inputs are not a list' };
  if (inputs.length > MAX_INPUTS) return { ok: false, reason: `it declares ${inputs.length} inputs, more than ${MAX_INPUTS}` };
  const out: DeclaredInput[] = [];
  for (let i = 0; i < inputs.length; i++) {
    const t: unknown = inputs[i];
    if (!isObj(t) || typeof t.name !== 'string') return { ok: false, reason: `inputs[${i}] has no name` };
    if (t.name.length > MAX_NAME) return { ok: false, reason: `inputs[${i}]'s name is longer than ${MAX_NAME} characters` };
    if (t.datatype === undefined || t.datatype === null || t.datatype === '') continue;
    if (!(V2_DATATYPES as readonly unknown[]).includes(t.datatype)) return { ok: false, reason: `inputs[${i}]'s datatype ${JSON.stringify(t.datatype).slice(0, 40)} is not a v2 datatype` };
    out.push({ name: t.name, datatype: t.datatype as V2Datatype });
  }
  return { ok: true, inputs: out };
}

/**
 * The declared input a SeldonMessage's one input is (named `fallbackName` when the model declares
 * nothing of it): the one the model declares, or among several the one named `fallbackName`; null
 * when several are declared and none is (which of them the message is cannot be known).
 */
export function declaredInput(inputs: readonly DeclaredInput[], fallbackName: string): DeclaredInput | null {
  if (inputs.length === 1) return inputs[0]!;
  for (const i of inputs) if (i.name === fallbackName) return i;
  return null;
}

/** How often the cache asks: a known answer is asked again after `refreshMs`; a failure after a backoff from `retryMinMs`, doubling to `retryMaxMs`. */
export interface MetadataTiming {
  readonly refreshMs: number;
  readonly retryMinMs: number;
  readonly retryMaxMs: number;
}

export const METADATA_TIMING: MetadataTiming = { refreshMs: 60_000, retryMinMs: 1_000, retryMaxMs: 60_000 };

interface Entry {
  /** `retain`'s key: the predictor, the model and the version. */
  readonly owner: string;
  /** The last good answer's declared inputs; null: none yet. */
  inputs: readonly DeclaredInput[] | null;
  inFlight: boolean;
  /** When the next fetch is due. */
  nextAt: number;
  /** Failures in a row since the last good answer. */
  failures: number;
}

/** The key of one model's metadata: its predictor (`Backend.id`), the model and the version asked ('' for none). */
export const metadataKey = (predictor: string, model: string, version: string): string => `${predictor}\n${model}\n${version}`;
/** `retain`'s owner of a key: its predictor, model and version (a predictor that asks another version forgets the last one's). */
export const metadataOwner = (predictor: string, model: string, version: string): string => `${predictor}\n${model}\n${version}`;

/**
 * The decisions of one process's metadata cache. Nothing here waits: `lookup` says what is known
 * now, `due` whether a fetch should start now (never two at once for one key), and the fetch's end
 * (`answered`, `failed`) sets the next.
 */
export class MetadataCache {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly timing: MetadataTiming = METADATA_TIMING) {}

  /** The declared inputs of the last good answer; null: none known (values decide). */
  lookup(key: string): readonly DeclaredInput[] | null {
    return this.entries.get(key)?.inputs ?? null;
  }

  /** Whether a fetch of `key` should start now; true also marks it started (`owner`: `metadataOwner`). */
  due(key: string, owner: string, now: number): boolean {
    const e = this.entries.get(key);
    if (e === undefined) {
      this.entries.set(key, { owner, inputs: null, inFlight: true, nextAt: Infinity, failures: 0 });
      return true;
    }
    if (e.inFlight || now < e.nextAt) return false;
    e.inFlight = true;
    return true;
  }

  /** A good answer: kept until the refresh. */
  answered(key: string, inputs: readonly DeclaredInput[], now: number): void {
    const e = this.entries.get(key);
    // Retained away while it was in flight: its predictor is gone, its answer with it.
    if (e === undefined) return;
    e.inputs = inputs;
    e.inFlight = false;
    e.failures = 0;
    e.nextAt = now + this.timing.refreshMs;
  }

  /**
   * A failed fetch (unreachable, an error status, a malformed or oversized answer): the last good
   * answer stays, the next try waits a backoff. True when this is the first failure in a row: the
   * one to log.
   */
  failed(key: string, now: number): boolean {
    const e = this.entries.get(key);
    if (e === undefined) return false;
    e.inFlight = false;
    e.failures++;
    const wait = Math.min(this.timing.retryMaxMs, this.timing.retryMinMs * 2 ** Math.min(e.failures - 1, 30));
    e.nextAt = now + wait;
    return e.failures === 1;
  }

  /** Forget every entry whose owner is not in `live` (its predictor left the table, or asks another model or version); returns how many. */
  retain(live: ReadonlySet<string>): number {
    let gone = 0;
    for (const [key, e] of this.entries) {
      if (live.has(e.owner)) continue;
      this.entries.delete(key);
      gone++;
    }
    return gone;
  }

  get size(): number {
    return this.entries.size;
  }
}
