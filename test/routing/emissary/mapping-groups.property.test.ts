/**
 * Random sets of Mappings in groups (weights, precedence, regexes, core keys that differ) and random requests:
 * the Mapping the gateway picks and the path the model receives equal a small reference model of Emissary's
 * rules written here from its source, independently of routing/:
 *
 * - a group is the Mappings sharing a match (prefix, regex or not, precedence); it takes its core keys from its
 *   first Mapping (here: the one setting the fewest, then the lowest name) and refuses one that sets a core key
 *   the group lacks or sets it otherwise (irhttpmappinggroup.py `add_mapping`);
 * - each Mapping is an Envoy route with a cumulative `runtime_fraction`: weighted Mappings first, as given, the
 *   weightless share what is left (`round`, half to even; the last takes the rest), a lone Mapping 100 %; a
 *   Mapping that takes the sum past 100 is refused (irbasemappinggroup.py `normalize_weights_in_mappings`);
 * - routes in route-weight order (`[precedence, len(prefix), …, prefix]`, highest first); one random value per
 *   request; the first route whose match holds and whose numerator is above the value wins;
 * - the model receives `rewrite` (default `/`) in place of the matched prefix, the whole path on a regex route,
 *   unless the group has a `regex_rewrite`: Envoy's route takes it from the group (the last of its Mappings that
 *   sets one, here by name: irhttpmappinggroup.py `finalize`, v3route.py), for every Mapping of it, before any `rewrite`.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { match } from '../../../routing/table/match.js';
import { randomPicker } from '../../../routing/table/pick.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteRequest } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

interface M {
  name: string;
  prefix: string;
  regex: boolean;
  precedence: number;
  weight: number | null;
  bypass: boolean;
  connect: number | null;
  rewrite: string | null;
  regexRewrite: readonly [string, string] | null;
}

const coreOf = (m: M): Record<string, string> => ({ ...(m.bypass ? { bypass_auth: 'true' } : {}), ...(m.connect !== null ? { connect_timeout_ms: String(m.connect) } : {}) });

function pyRound(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Every accepted Mapping with its cumulative numerator, in Envoy's route order. */
function emissaryRoutes(ms: M[]): { m: M; upTo: number; regexRewrite: readonly [string, string] | null }[] {
  const groups = new Map<string, M[]>();
  for (const m of ms) {
    const k = JSON.stringify([m.prefix, m.regex, m.precedence]);
    groups.set(k, [...(groups.get(k) ?? []), m]);
  }
  const out: { m: M; upTo: number; weight: (number | string)[]; regexRewrite: readonly [string, string] | null }[] = [];
  for (const g of groups.values()) {
    const byName = [...g].sort((a, b) => (a.name < b.name ? -1 : 1));
    const first = [...byName].sort((a, b) => Object.keys(coreOf(a)).length - Object.keys(coreOf(b)).length)[0]!;
    const core = coreOf(first);
    const kept = byName.filter((m) => Object.entries(coreOf(m)).every(([k, v]) => core[k] === v));
    const weighted = kept.filter((m) => m.weight !== null);
    const weightless = kept.filter((m) => m.weight === null);
    const routeWeight = [first.precedence, first.prefix.length, first.prefix];
    const regexRewrite = kept.filter((m) => m.regexRewrite !== null).pop()?.regexRewrite ?? null;
    if (kept.length === 1) {
      out.push({ m: kept[0]!, upTo: 100, weight: routeWeight, regexRewrite });
      continue;
    }
    let sum = 0;
    const accepted: { m: M; upTo: number }[] = [];
    for (const m of weighted) {
      if (sum + m.weight! > 100) continue;
      sum += m.weight!;
      accepted.push({ m, upTo: sum });
    }
    if (accepted.length + weightless.length === 1) {
      out.push({ m: (accepted[0]?.m ?? weightless[0])!, upTo: 100, weight: routeWeight, regexRewrite });
      continue;
    }
    const each = weightless.length ? pyRound((100 - sum) / weightless.length) : 0;
    weightless.forEach((m, i) => {
      sum = i === weightless.length - 1 ? 100 : Math.min(100, sum + each);
      accepted.push({ m, upTo: sum });
    });
    for (const a of accepted) out.push({ ...a, weight: routeWeight, regexRewrite });
  }
  const cmp = (a: (number | string)[], b: (number | string)[]): number => {
    for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
    return 0;
  };
  // Stable: a group's routes keep their order.
  return out.sort((a, b) => cmp(b.weight, a.weight)).map(({ m, upTo, regexRewrite }) => ({ m, upTo, regexRewrite }));
}

function emissary(ms: M[], path: string, u: number): string {
  for (const { m, upTo, regexRewrite } of emissaryRoutes(ms)) {
    const holds = m.regex ? new RegExp(`^(?:${m.prefix})$`).test(path) : path.startsWith(m.prefix);
    if (!holds || u * 100 >= upTo) continue;
    if (regexRewrite !== null) return `${m.name} ${path.replace(new RegExp(regexRewrite[0], 'g'), regexRewrite[1])}`;
    const rewrite = m.rewrite ?? '/';
    return `${m.name} ${rewrite === '' ? path : m.regex ? rewrite : rewrite + path.slice(m.prefix.length)}`;
  }
  return '404';
}

function yamlOf(m: M): string {
  const lines = ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', `name: ${m.name}`, `prefix: "${m.prefix}"`, `service: svc-${m.name}`];
  if (m.regex) lines.push('prefix_regex: true');
  if (m.precedence !== 0) lines.push(`precedence: ${m.precedence}`);
  if (m.weight !== null) lines.push(`weight: ${m.weight}`);
  if (m.bypass) lines.push('bypass_auth: true');
  if (m.connect !== null) lines.push(`connect_timeout_ms: ${m.connect}`);
  if (m.rewrite !== null) lines.push(`rewrite: "${m.rewrite}"`);
  if (m.regexRewrite !== null) lines.push(`regex_rewrite: {pattern: "${m.regexRewrite[0]}", substitution: "${m.regexRewrite[1]}"}`);
  return lines.join('\n');
}

const mappingArb = fc.record({
  match: fc.constantFrom<[string, boolean]>(['/seldon/ns/a/', false], ['/seldon/ns/a/b/', false], ['/seldon/ns/', false], ['/seldon/ns/a/[a-z]+', true], ['/seldon/ns/.*', true]),
  precedence: fc.constantFrom(0, 0, 0, 1),
  weight: fc.constantFrom<number | null>(null, null, 0, 10, 30, 50, 60, 100, 150),
  bypass: fc.boolean(),
  connect: fc.constantFrom<number | null>(null, null, null, 100, 200),
  rewrite: fc.constantFrom<string | null>(null, null, '', '/v2/'),
  regexRewrite: fc.constantFrom<readonly [string, string] | null>(null, null, null, ['^/seldon/ns/', '/r1/'], ['a', 'A']),
});

describe('Mapping groups: the gateway routes as Emissary would', () => {
  it('for random Mapping sets, weights, core keys and draws: the Mapping chosen and the upstream path', () => {
    fc.assert(
      fc.property(
        fc.array(mappingArb, { minLength: 1, maxLength: 9 }),
        fc.array(fc.tuple(fc.constantFrom('/seldon/ns/a/', '/seldon/ns/a/x', '/seldon/ns/a/b/c', '/seldon/ns/z', '/seldon/ns/a/B'), fc.constantFrom(0.005, 0.055, 0.105, 0.255, 0.505, 0.755, 0.995)), {
          minLength: 1,
          maxLength: 10,
        }),
        (raw, reqs) => {
          const ms: M[] = raw.map((r, i) => ({
            name: `m${i}`,
            prefix: r.match[0],
            regex: r.match[1],
            precedence: r.precedence,
            weight: r.weight,
            bypass: r.bypass,
            connect: r.connect,
            rewrite: r.rewrite,
            regexRewrite: r.regexRewrite,
          }));
          const d = {
            apiVersion: 'machinelearning.seldon.io/v1',
            kind: 'SeldonDeployment',
            metadata: { name: 'sd', namespace: 'ns', annotations: { 'seldon.io/ambassador-config': ms.map(yamlOf).join('\n---\n') } },
            spec: { predictors: [{ name: 'main', graph: { name: 'm', type: 'MODEL' } }] },
          } as SeldonDeployment;
          const table = buildTable([d], DEFAULT_COMPILE_OPTIONS);
          for (const [path, u] of reqs) {
            // One value per request, as Envoy draws: every draw of this picker is `u`.
            const picker = randomPicker(() => u);
            const rr: RouteRequest = { kind: 'rest', method: 'GET', path, host: 'gw', header: () => undefined };
            const got = match(table, rr, picker);
            const want = emissary(ms, path, u);
            expect(got.ok ? `${got.backend.origin.predictor} ${got.upstreamPath}` : String(got.status), JSON.stringify({ path, u, ms })).toBe(want);
          }
        },
      ),
      { numRuns: 800, seed: 74 },
    );
  });
});
