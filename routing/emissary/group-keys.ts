/**
 * Emissary's group-level Mapping keys (docs/routing.md#groups-of-mappings): Mappings sharing a route are one
 * IRHTTPMappingGroup, and Envoy's route takes these keys from the group, not from each Mapping
 * (irhttpmappinggroup.py `finalize`, v3route.py): `add_request_headers` / `add_response_headers` merged
 * over the group's Mappings, `remove_request_headers`, `remove_response_headers`, `regex_rewrite`, `cors`,
 * `retry_policy` and `allow_upgrade` (with `use_websocket`) from the last Mapping that sets them. Every
 * other key stays the Mapping's own (`timeout_ms`, `idle_timeout_ms`, `rewrite`, `host_rewrite`, ...).
 * Emissary's "last" is the last it read; here the group's Mappings are taken in id order, so the result
 * never depends on arrival order (a canary named after its stable Mapping is read last, as it was added).
 */
import type { Backend, CorsPolicy, RetryPolicy } from '../types.js';
import { LINKERD_DST_OVERRIDE, NO_POLICY, type HeaderAddition, type HeaderEdits, type MappingPolicy, type RegexRewrite } from './mapping-policy.js';

/** One Mapping's own values of the group-level keys, null where it sets none. */
export interface GroupKeys {
  readonly addRequestHeaders: readonly HeaderAddition[] | null;
  readonly removeRequestHeaders: readonly string[] | null;
  readonly addResponseHeaders: readonly HeaderAddition[] | null;
  readonly removeResponseHeaders: readonly string[] | null;
  readonly regexRewrite: RegexRewrite | null;
  readonly cors: CorsPolicy | null;
  readonly retry: RetryPolicy | null;
  readonly upgrades: readonly string[] | null;
}

type Key = keyof GroupKeys;

/** The keys as Emissary names them, for warnings. */
const KEY_NAMES: Readonly<Record<Key, string>> = {
  addRequestHeaders: 'add_request_headers',
  removeRequestHeaders: 'remove_request_headers',
  addResponseHeaders: 'add_response_headers',
  removeResponseHeaders: 'remove_response_headers',
  regexRewrite: 'regex_rewrite',
  cors: 'cors',
  retry: 'retry_policy',
  upgrades: 'allow_upgrade',
};
const KEYS = Object.keys(KEY_NAMES) as Key[];

/** A Mapping's own group-level values, or null when it sets none of them (the common case). */
export function groupKeysOf(k: GroupKeys): GroupKeys | null {
  return KEYS.some((key) => k[key] !== null) ? k : null;
}

/** A value as compared between Mappings (functions, such as a compiled regex, are left out). */
const text = (v: unknown): string => JSON.stringify(v) ?? 'null';

/** Additions merged by name as Python's `dict.update`: a later Mapping's value replaces, in the first one's place. */
function merged(lists: readonly (readonly HeaderAddition[])[]): HeaderAddition[] {
  const byName = new Map<string, HeaderAddition>();
  for (const list of lists) for (const a of list) byName.set(a.name, a);
  return [...byName.values()];
}

export interface SettledGroupKeys {
  /** The group's values; null where no Mapping of the group sets the key. */
  readonly keys: GroupKeys;
  /** What a team reading each Mapping alone would not expect: a key one Mapping sets reaching the others. */
  readonly warnings: readonly string[];
}

/**
 * The group's values from its Mappings (`id` order, the last that sets a key gives it), and a warning for
 * each key the Mappings disagree on. Null when no Mapping sets any (nothing changes).
 */
export function settleGroupKeys(mappings: readonly { readonly id: string; readonly keys: GroupKeys | null }[]): SettledGroupKeys | null {
  const setting = mappings.filter((m) => m.keys !== null);
  if (mappings.length < 2 || setting.length === 0) return null;
  const keys: Record<Key, unknown> = {} as Record<Key, unknown>;
  const warnings: string[] = [];
  for (const key of KEYS) {
    const by = mappings.filter((m) => m.keys?.[key] != null);
    if (by.length === 0) {
      keys[key] = null;
      continue;
    }
    const own = (m: (typeof mappings)[number]): unknown => m.keys?.[key] ?? null;
    const value = key === 'addRequestHeaders' || key === 'addResponseHeaders' ? merged(by.map((m) => own(m) as HeaderAddition[])) : own(by[by.length - 1]!);
    keys[key] = value;
    // Every Mapping of the group already writes what the group takes: nothing to tell.
    const differ = mappings.filter((m) => text(own(m)) !== text(value));
    if (differ.length === 0) continue;
    const name = KEY_NAMES[key];
    const from = key === 'addRequestHeaders' || key === 'addResponseHeaders' ? `merged from ${by.map((m) => m.id).join(', ')}` : `${by[by.length - 1]!.id}'s (the last by name that sets it)`;
    const which = differ.length === 1 ? 'which sets' : 'which set';
    warnings.push(
      `${name} is the route's in Emissary, not each Mapping's: ${from} applies to every Mapping of the group, also to ${differ.map((m) => m.id).join(', ')}, ${which} it otherwise or not at all`,
    );
  }
  return { keys: keys as unknown as GroupKeys, warnings };
}

/** `own` with the group's additions and removals where the group has them; the Mapping's linkerd header kept its own. */
function editsWith(own: HeaderEdits | null, add: readonly HeaderAddition[] | null, remove: readonly string[] | null, linkerd: HeaderAddition | undefined): HeaderEdits | null {
  if (add === null && remove === null) return own;
  let adds = add ?? own?.add ?? [];
  // Each Mapping's l5d-dst-override names its own service (docs/routing.md#groups-of-mappings): the group's never replaces it.
  if (linkerd !== undefined) adds = [...adds.filter((a) => a.name !== LINKERD_DST_OVERRIDE), linkerd];
  return { remove: remove ?? own?.remove ?? [], add: adds };
}

/**
 * A member's backend with the group's values of the keys the group sets; the same object when nothing
 * changes. `linkerd`: the Mapping's own `l5d-dst-override` (`add_linkerd_headers`), kept whatever the group adds.
 */
export function withGroupKeys(b: Backend, g: GroupKeys, linkerd: HeaderAddition | null): Backend {
  const p: MappingPolicy = b.mapping ?? NO_POLICY;
  const policy: MappingPolicy = {
    ...p,
    requestHeaders: editsWith(p.requestHeaders, g.addRequestHeaders, g.removeRequestHeaders, linkerd ?? undefined),
    responseHeaders: editsWith(p.responseHeaders, g.addResponseHeaders, g.removeResponseHeaders, undefined),
    regexRewrite: g.regexRewrite ?? p.regexRewrite,
    upgrades: g.upgrades ?? p.upgrades,
  };
  const retry = g.retry ?? b.retry;
  const cors = g.cors ?? b.cors;
  const policyChanged = text(policy) !== text(p) || policy.regexRewrite !== p.regexRewrite;
  if (!policyChanged && retry === b.retry && cors === b.cors) return b;
  return { ...b, retry, cors, mapping: policyChanged ? policy : b.mapping };
}
