/**
 * The request header edits an external auth service's allowance asks for (and a JWT check's claim
 * headers, which follow them), with Envoy ext_authz's meaning: every set first (it replaces the
 * client's header; set twice, the last wins), then every append (joined with `,` to the header's
 * first line when the request has it, as Envoy's `appendCopy` does: `foo: foo` and an append of
 * `bar` make `foo: foo,bar`, never a second line; added when it has not), then every removal.
 * Host, pseudo-headers and the framing fields (Content-Length, the connection-specific ones) are never
 * edited: an auth service cannot make a second Host line, change the request's target or its framing
 * (Envoy refuses to modify the first two; HTTP/2 forbids the last).
 *
 * One plan per edit list, made once (a JWT's edits are one object for every request with the same
 * token): what the stages after the gate read (pipeline/request.ts `header`) and what the model
 * receives (the REST header list, the gRPC header object) come from the same plan.
 */
import { CONNECTION_SPECIFIC_FIELDS } from '../values/syntax.js';

/** One header an auth service's answer (or a JWT check) sets (`append` false) or appends to: on the request, or on the client's answer. Names are lower case. */
export interface AuthHeaderEdit {
  readonly name: string;
  readonly value: string;
  readonly append: boolean;
}

export interface AuthEdits {
  readonly headers: readonly AuthHeaderEdit[];
  /** Header names (lower case) removed. */
  readonly remove: readonly string[];
}

/** An edit list as applied: a name's final value when it is set, what is joined to the client's value when appended, and the names removed. */
export interface AuthEditPlan {
  /** Set (replacing every line of the name), appends to a set name already joined in. */
  readonly set: ReadonlyMap<string, string>;
  /** Joined with `,` to the request's first line of the name, or added as one line without it. */
  readonly appended: ReadonlyMap<string, string>;
  readonly removed: ReadonlySet<string>;
  /** Names whose lines are dropped from the request (set or removed). */
  readonly drop: ReadonlySet<string>;
  /** The lengths of the names dropped or appended to: a request's name is lower-cased only when its length is one of them. */
  readonly lengths: ReadonlySet<number>;
  /** Whether the plan changes the request at all: Envoy clears the route cache only then. */
  readonly changes: boolean;
}

/** The auth service's edits followed by a JWT check's (either may be absent): one list, as they apply. */
export function chainAuthEdits(first: AuthEdits | undefined, then: AuthEdits | undefined): AuthEdits | undefined {
  if (first === undefined) return then;
  if (then === undefined) return first;
  return { headers: [...first.headers, ...then.headers], remove: [...first.remove, ...then.remove] };
}

// Host, pseudo-headers and the message's framing are the gateway's: an auth service edits none of them (over HTTP/2 a
// connection-specific field would fail the call upstream).
const editable = (name: string): boolean => name !== 'host' && name !== 'content-length' && !name.startsWith(':') && !CONNECTION_SPECIFIC_FIELDS.has(name);

const plans = new WeakMap<AuthEdits, AuthEditPlan>();

/** The plan of every empty edit list (most allowances): shared, so asking whether one changes anything costs nothing. */
const NO_EDITS: AuthEditPlan = { set: new Map(), appended: new Map(), removed: new Set(), drop: new Set(), lengths: new Set(), changes: false };

export function authEditPlan(a: AuthEdits): AuthEditPlan {
  if (a.headers.length === 0 && a.remove.length === 0) return NO_EDITS;
  let plan = plans.get(a);
  if (plan !== undefined) return plan;
  const set = new Map<string, string>();
  const appended = new Map<string, string>();
  for (const e of a.headers) if (!e.append && editable(e.name)) set.set(e.name, e.value);
  for (const e of a.headers) {
    if (!e.append || !editable(e.name)) continue;
    const into = set.has(e.name) ? set : appended;
    const had = into.get(e.name);
    into.set(e.name, had === undefined ? e.value : `${had},${e.value}`);
  }
  const removed = new Set<string>();
  for (const name of a.remove) {
    if (!editable(name)) continue;
    removed.add(name);
    set.delete(name);
    appended.delete(name);
  }
  const drop = new Set([...set.keys(), ...removed]);
  const lengths = new Set([...drop, ...appended.keys()].map((n) => n.length));
  plan = { set, appended, removed, drop, lengths, changes: set.size + appended.size + removed.size > 0 };
  plans.set(a, plan);
  return plan;
}

/**
 * A header as the request reads after the edits (every line of the name joined with `,`): what the
 * second match and the stages after the gate read, for a request and an upgrade alike. `read`: the
 * request's own value.
 */
export function editedHeader(plan: AuthEditPlan, name: string, read: (name: string) => string | undefined): string | undefined {
  const v = plan.set.get(name);
  if (v !== undefined) return v;
  if (plan.removed.has(name)) return undefined;
  const more = plan.appended.get(name);
  if (more !== undefined) {
    const own = read(name);
    return own === undefined ? more : `${own},${more}`;
  }
  return read(name);
}

/** The edits on the upstream request's `name, value` list (names as the client wrote them, matched without case). */
export function applyAuthEdits(headers: string[], a: AuthEdits): void {
  const { set, appended, drop, lengths } = authEditPlan(a);
  if (drop.size > 0 || appended.size > 0) {
    const joined = appended.size > 0 ? new Set<string>() : undefined;
    let w = 0;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i]!;
      const lower = lengths.has(name.length) ? name.toLowerCase() : undefined;
      if (lower !== undefined && drop.has(lower)) continue;
      let value = headers[i + 1]!;
      if (lower !== undefined && joined !== undefined && !joined.has(lower)) {
        const more = appended.get(lower);
        if (more !== undefined) {
          value = `${value},${more}`;
          joined.add(lower);
        }
      }
      headers[w++] = name;
      headers[w++] = value;
    }
    headers.length = w;
    if (joined !== undefined) for (const [name, value] of appended) if (!joined.has(name)) headers.push(name, value);
  }
  for (const [name, value] of set) headers.push(name, value);
}

/** The same edits on a gRPC call's header object (lower-case names; a repeated one's values joined). */
export function applyAuthEditsToObject(headers: Record<string, string | string[] | number | undefined>, a: AuthEdits): void {
  const { set, appended, removed } = authEditPlan(a);
  for (const [name, value] of set) headers[name] = value;
  for (const [name, value] of appended) {
    const had = headers[name];
    headers[name] = had === undefined ? value : `${Array.isArray(had) ? had.join(',') : String(had)},${value}`;
  }
  for (const name of removed) delete headers[name];
}
