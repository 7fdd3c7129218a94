/**
 * Random sets of hand-written Mappings and random requests: the route the gateway picks is the one a small
 * reference model of Emissary picks (docs/routing.md#mapping-keys). The model is written from Emissary's
 * own rules, independently of routing/: a Mapping matches when its path, method, headers, Host and query
 * parameters all hold (Envoy's route match); Mappings are tried by route weight, highest first, the weight
 * being `[precedence, len(prefix), len_headers, len_query_parameters, prefix, method, *header keys,
 * *query keys]` compared as Python compares lists (irhttpmapping.py `_route_weight`), where `:authority`
 * and `:method` are headers.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { match } from '../../../routing/table/match.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

interface M {
  name: string;
  prefix: string;
  exact: boolean;
  caseInsensitive: boolean;
  method?: string;
  header?: { value: string | true };
  query?: { value: string | true };
  hostname?: string;
  precedence: number;
}

interface Req {
  method: string;
  path: string;
  host: string;
  header?: string;
  query?: string;
}

// Reference: Envoy's match of one Mapping.
function holds(m: M, r: Req): boolean {
  const [path, qs] = r.path.includes('?') ? [r.path.slice(0, r.path.indexOf('?')), r.path.slice(r.path.indexOf('?') + 1)] : [r.path, undefined];
  const p = m.caseInsensitive ? path.toLowerCase() : path;
  const prefix = m.caseInsensitive ? m.prefix.toLowerCase() : m.prefix;
  if (m.exact ? p !== prefix : !p.startsWith(prefix)) return false;
  if (m.method !== undefined && r.method !== m.method) return false;
  if (m.header !== undefined && (r.header === undefined || (m.header.value !== true && r.header !== m.header.value))) return false;
  if (m.query !== undefined) {
    const first = (qs ?? '').split('&').find((kv) => kv === 'v' || kv.startsWith('v='));
    if (first === undefined) return false;
    const value = first === 'v' ? '' : first.slice(2);
    if (m.query.value !== true && value !== m.query.value) return false;
  }
  if (m.hostname !== undefined && m.hostname !== '*') {
    // Emissary's `:authority` header matcher (v3route.py generate_headers): suffix, prefix or exact, case as sent.
    const host = r.host;
    if (m.hostname.startsWith('*') ? !host.endsWith(m.hostname.slice(1)) : m.hostname.endsWith('*') ? !host.startsWith(m.hostname.slice(0, -1)) : host !== m.hostname) return false;
  }
  return true;
}

// Reference: Emissary's route weight.
function weight(m: M): (number | string)[] {
  const headers: [string, string | undefined][] = [];
  if (m.header) headers.push(['x-h', m.header.value === true ? undefined : m.header.value]);
  if (m.hostname !== undefined && m.hostname !== '*') headers.push([':authority', m.hostname]);
  if (m.method !== undefined) headers.push([':method', m.method]);
  const queries: [string, string | undefined][] = m.query ? [['v', m.query.value === true ? undefined : m.query.value]] : [];
  const len = (kv: [string, string | undefined][]): number => kv.reduce((n, [k, v]) => n + k.length + (v ?? '*').length, 0);
  return [m.precedence, m.prefix.length, len(headers), len(queries), m.prefix, m.method ?? 'GET', ...headers.map(([k, v]) => `${k}-${v ?? '*'}`), ...queries.map(([k, v]) => `${k}-${v ?? '*'}`)];
}

function pythonCompare(a: (number | string)[], b: (number | string)[]): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] === b[i]) continue;
    return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}

function emissaryPick(ms: M[], r: Req): string {
  const sorted = [...ms].sort((a, b) => pythonCompare(weight(b), weight(a)));
  return sorted.find((m) => holds(m, r))?.name ?? '404';
}

function yamlOf(m: M): string {
  const lines = ['apiVersion: getambassador.io/v2', 'kind: Mapping', `name: ${m.name}`, `prefix: ${m.prefix}`, `service: svc-${m.name}`];
  if (m.exact) lines.push('prefix_exact: true');
  if (m.caseInsensitive) lines.push('case_sensitive: false');
  if (m.method) lines.push(`method: ${m.method}`);
  if (m.header) lines.push('headers:', `  x-h: ${m.header.value === true ? 'true' : JSON.stringify(m.header.value)}`);
  if (m.query) lines.push('query_parameters:', `  v: ${m.query.value === true ? 'true' : JSON.stringify(m.query.value)}`);
  if (m.hostname) lines.push(`hostname: ${JSON.stringify(m.hostname)}`);
  if (m.precedence !== 0) lines.push(`precedence: ${m.precedence}`);
  return lines.join('\n');
}

/** What Emissary groups by (irhttpmapping.py `_group_id`): Mappings sharing it are one weighted split, so the model keeps one each. */
const groupId = (m: M): string => JSON.stringify([m.prefix, m.exact, m.caseInsensitive, m.method, m.header, m.query, m.hostname, m.precedence]);

const mappingArb = fc.record({
  shape: fc.constantFrom('prefix', 'prefix', 'prefix', 'exact', 'nocase'),
  prefix: fc.constantFrom('/seldon/ns/a/', '/seldon/ns/a/b/', '/seldon/ns/ab', '/seldon/ns/a/b/cd'),
  method: fc.option(fc.constantFrom('GET', 'POST'), { nil: undefined }),
  header: fc.option(fc.record({ value: fc.constantFrom<string | true>('1', '22', true) }), { nil: undefined }),
  query: fc.option(fc.record({ value: fc.constantFrom<string | true>('1', '2', true) }), { nil: undefined }),
  hostname: fc.option(fc.constantFrom('*.example.com', 'api.example.com', '*', 'API.*', 'API.Example.com'), { nil: undefined }),
  precedence: fc.constantFrom(0, 0, 0, 5, -1),
});

const requestArb = fc.record({
  method: fc.constantFrom('GET', 'POST', 'PUT'),
  path: fc.constantFrom('/seldon/ns/a/', '/seldon/ns/a/x', '/seldon/ns/A/x', '/seldon/ns/a/b/cd', '/seldon/ns/a/b/c', '/seldon/ns/abc', '/seldon/ns/x', '/seldon/ns/x/'),
  query: fc.option(fc.constantFrom('v=1', 'v=2', 'v', 'w=1&v=1', 'v=2&v=1', 'vv=1'), { nil: undefined }),
  host: fc.constantFrom('api.example.com', 'a.b.example.com', 'example.com', 'API.Example.com', 'other', '.example.com', 'api.example.com:8080'),
  header: fc.option(fc.constantFrom('1', '22', ''), { nil: undefined }),
});

describe('Mapping order: the gateway picks what Emissary picks', () => {
  it('for random Mapping sets and requests', () => {
    fc.assert(
      fc.property(fc.array(mappingArb, { minLength: 1, maxLength: 8 }), fc.array(requestArb, { minLength: 1, maxLength: 12 }), (raw, reqs) => {
        const seen = new Set<string>();
        const ms: M[] = [];
        raw.forEach((r, i) => {
          // prefix_exact and case-insensitive Mappings on prefixes of their own (Emissary's group id has neither).
          const prefix = r.shape === 'exact' ? '/seldon/ns/x' : r.shape === 'nocase' ? '/seldon/ns/A/' : r.prefix;
          const m: M = { name: `m${i}`, prefix, exact: r.shape === 'exact', caseInsensitive: r.shape === 'nocase', precedence: r.precedence };
          if (r.method) m.method = r.method;
          if (r.header) m.header = r.header;
          if (r.query) m.query = r.query;
          if (r.hostname) m.hostname = r.hostname;
          if (seen.has(groupId(m))) return;
          seen.add(groupId(m));
          ms.push(m);
        });
        const d: SeldonDeployment = {
          apiVersion: 'machinelearning.seldon.io/v1',
          kind: 'SeldonDeployment',
          metadata: { name: 'sd', namespace: 'ns', annotations: { 'seldon.io/ambassador-config': ms.map(yamlOf).join('\n---\n') } },
          spec: { predictors: [{ name: 'main', graph: { name: 'm', type: 'MODEL' } }] },
        } as SeldonDeployment;
        const table = buildTable([d], DEFAULT_COMPILE_OPTIONS);
        expect(table.deployments.get('ns/sd')?.reasons.filter((x) => !x.startsWith('Mapping key'))).toEqual([]);
        const picker = randomPicker(seededRandom(1));
        for (const r of reqs) {
          const req: Req = { method: r.method, path: r.query === undefined ? r.path : `${r.path}?${r.query}`, host: r.host, ...(r.header !== undefined ? { header: r.header } : {}) };
          const rr: RouteRequest = { kind: 'rest', method: req.method, path: req.path, host: req.host, header: (n) => (n === 'x-h' ? req.header : undefined) };
          const got = match(table, rr, picker);
          expect(got.ok ? got.backend.origin.predictor : String(got.status), JSON.stringify({ req, ms })).toBe(emissaryPick(ms, req));
        }
      }),
      { numRuns: 600, seed: 66 },
    );
  });
});
