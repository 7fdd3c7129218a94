/**
 * The metadata of the v2 models that Seldon clients reach through the protocol translation
 * (docs/protocol-translation.md#the-models-metadata), in one process: what a translated input is
 * named and typed by (`inputFor`), fetched beside traffic (`wanted`, called once a translated request
 * was admitted: the request never waits for it, and one refused fetches nothing).
 *
 * Why beside traffic and not before: MLServer and Triton answer their metadata from the model's
 * settings, but a model still loading, scaled to zero or unreachable must not hold a client's
 * request; its first requests go with datatypes by their values (what they always got), and the
 * declared ones once the answer is in.
 *
 * Lifetimes (docs/architecture.md#lifetimes): this object owns the cache. `retain(table)`, run at
 * every table change, forgets each model whose predictor left the table or that its predictor
 * names no more; a fetch in flight for it then ends unheard. The decisions (refresh, backoff, what
 * to forget, what to trust) are routing/policies/model-metadata.ts's; the sockets are fetch.ts's.
 */
import type { Logger } from 'pino';
import type { Backend, RouteTable } from '../../routing/types.js';
import type { TranslatePolicy } from '../../routing/policies/protocol.js';
import { METADATA_TIMING, MetadataCache, declaredInput, metadataKey, metadataOwner, readModelMetadata, type MetadataTiming } from '../../routing/policies/model-metadata.js';
import { DEFAULT_INPUT_NAME, type V2Input } from '../translate/seldon-client.js';
import type { Upstreams } from '../upstream/pools.js';
import type { GrpcUpstreams } from '../upstream/grpc-sessions.js';
import { fetchGrpc, fetchRest, type FetchLimits, type Fetched } from './fetch.js';

/** A metadata answer is a few hundred bytes: 64 KiB is room for a thousand inputs, and the most read. */
export const MAX_METADATA_BYTES = 64 * 1024;
export const METADATA_TIMEOUT_MS = 5_000;

export interface ModelMetadataDeps {
  readonly rest: Upstreams;
  /** The gRPC upstreams (made by the gRPC proxy, after this). */
  readonly grpc: () => GrpcUpstreams;
  /** The cache's clock, in ms (tests move it). */
  readonly now: () => number;
  readonly log?: Logger | undefined;
  readonly timing?: MetadataTiming | undefined;
  readonly limits?: Partial<FetchLimits> | undefined;
}

/** The version a Seldon client's translated request asks, as the cache and the fetch name it: the annotation's `modelVersion`, or '' for none (`/v2/models/<m>`). */
const versionOf = (t: TranslatePolicy): string => t.modelVersion ?? '';

export class ModelMetadata {
  private readonly cache: MetadataCache;
  private readonly limits: FetchLimits;
  private readonly keys = new WeakMap<Backend, string>();

  constructor(private readonly deps: ModelMetadataDeps) {
    this.cache = new MetadataCache(deps.timing ?? METADATA_TIMING);
    this.limits = { timeoutMs: deps.limits?.timeoutMs ?? METADATA_TIMEOUT_MS, maxBytes: deps.limits?.maxBytes ?? MAX_METADATA_BYTES };
  }

  /** The input a Seldon client's message becomes for `backend`'s v2 model: the declared name, and the annotation's datatype, else the declared one, else none (by the values). */
  inputFor(backend: Backend): V2Input {
    const t = backend.translate!;
    const declared = this.cache.lookup(this.keyOf(backend));
    const d = declared === null ? null : declaredInput(declared, DEFAULT_INPUT_NAME);
    if (d === null) return { name: DEFAULT_INPUT_NAME, datatype: t.datatype };
    return { name: d.name, datatype: t.datatype ?? d.datatype };
  }

  /** A translated request to `backend`'s v2 model was admitted: fetch its metadata now if it is due (first, refresh, retry), over `transport`; `authority`: a gRPC call's. */
  wanted(backend: Backend, transport: 'rest' | 'grpc', authority = ''): void {
    const t = backend.translate!;
    const key = this.keyOf(backend);
    if (!this.cache.due(key, key, this.deps.now())) return;
    const version = versionOf(t);
    const done = (r: Fetched): void => this.settle(key, backend, t.modelName, r);
    if (transport === 'rest') fetchRest(this.deps.rest.for(backend), t.modelName, version, this.limits, done);
    else fetchGrpc(this.deps.grpc().for(backend), authority, t.modelName, version, this.limits, done);
  }

  /**
   * The cache's key of `backend`'s model (also `retain`'s owner: the same predictor, model and version), made once per
   * compiled Backend: a string built and hashed per request cost a µs. Held weakly: a Backend the table dropped takes its key with it.
   */
  private keyOf(backend: Backend): string {
    let key = this.keys.get(backend);
    if (key === undefined) {
      const t = backend.translate!;
      this.keys.set(backend, (key = metadataKey(backend.id, t.modelName, versionOf(t))));
    }
    return key;
  }

  /** Forget the models (and versions) no predictor of `table` translates for any more; returns how many. */
  retain(table: RouteTable): number {
    const live = new Set<string>();
    for (const g of table.groups) {
      for (const m of g.members) liveOwner(live, m.backend);
      for (const m of g.mirrors) liveOwner(live, m.backend);
    }
    return this.cache.retain(live);
  }

  /** Models held now (for tests). */
  get size(): number {
    return this.cache.size;
  }

  private settle(key: string, backend: Backend, model: string, r: Fetched): void {
    const now = this.deps.now();
    const read = r.ok ? readModelMetadata(r.doc) : r;
    if (read.ok) return this.cache.answered(key, read.inputs, now);
    // Logged once per run of failures: a model that stays away is retried with backoff, quietly.
    if (this.cache.failed(key, now)) {
      const { namespace, deployment, predictor } = backend.origin;
      this.deps.log?.warn(
        { namespace, deployment, predictor, model, reason: read.reason },
        `model metadata of ${model} not taken (${read.reason}): its inputs go with datatypes by their values; retried with backoff`,
      );
    }
  }
}

function liveOwner(live: Set<string>, b: Backend): void {
  const t = b.translate;
  if (t !== null && t.speaks === 'v2') live.add(metadataOwner(b.id, t.modelName, versionOf(t)));
}
