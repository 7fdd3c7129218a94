/**
 * Pure helpers shared by the k6 scripts in this folder (no k6 imports, no globals: the test
 * suite runs them under Node too). Reading the environment is the scripts' job.
 */

/** The public REST prediction URL of a SeldonDeployment behind the gateway. */
export function predictUrl(gateway: string, namespace: string, deployment: string, path = '/api/v1.0/predictions'): string {
  return `${gateway.replace(/\/+$/, '')}/seldon/${encodeURIComponent(namespace)}/${encodeURIComponent(deployment)}${path}`;
}

/** Request headers: JSON, plus `Authorization: Bearer <token>` when a token is given (OAuth). */
export function requestHeaders(token: string | undefined, extra: Record<string, string> = {}): Record<string, string> {
  return { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...extra };
}

/** A header's value whatever the case of its name (k6 canonicalises names, e.g. X-Seldon-Predictor). */
export function headerValue(headers: Readonly<Record<string, string | readonly string[] | undefined>>, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(headers)) {
    if (k.toLowerCase() !== want || v === undefined) continue;
    return typeof v === 'string' ? v : v.join(',');
  }
  return undefined;
}

/** `main=75,canary=25` → { main: 75, canary: 25 }. */
export function parseSplit(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const part of text.split(',')) {
    const p = part.trim();
    if (!p) continue;
    const m = /^([^=\s]+)\s*=\s*([0-9]+(?:\.[0-9]+)?)$/.exec(p);
    if (!m) throw new Error(`"${p}" is not <predictor>=<percent>`);
    out[m[1]!] = Number(m[2]);
  }
  return out;
}

/** The parts of the admin /routes JSON the scripts read. */
export interface RoutesJson {
  deployments: {
    namespace: string;
    name: string;
    state: string;
    routes: {
      kind: string;
      match: { headers: string[] };
      members: { deployment: string; predictor: string; percent: number }[];
      mirrors: { deployment: string; predictor: string; percent: number }[];
    }[];
  }[];
}

/** The REST route of a deployment (the one without header constraints) in the admin /routes JSON. */
function restRoute(routes: RoutesJson, namespace: string, deployment: string): RoutesJson['deployments'][number]['routes'][number] {
  const d = routes.deployments.find((x) => x.namespace === namespace && x.name === deployment);
  if (!d) throw new Error(`no SeldonDeployment ${namespace}/${deployment} in /routes`);
  if (d.state === 'rejected' || d.state === 'skipped') throw new Error(`${namespace}/${deployment} is ${d.state}`);
  const route = d.routes.find((r) => r.kind === 'rest' && r.match.headers.length === 0) ?? d.routes.find((r) => r.kind === 'rest');
  if (!route) throw new Error(`${namespace}/${deployment} has no REST route`);
  return route;
}

/** The configured split of a deployment's REST route, from the admin /routes JSON. */
export function expectedSplit(routes: RoutesJson, namespace: string, deployment: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const m of restRoute(routes, namespace, deployment).members) out[m.deployment === deployment ? m.predictor : `${m.deployment}/${m.predictor}`] = m.percent;
  return out;
}

/** The shadows of a deployment's REST route and their mirror percent, from /routes. */
export function expectedMirrors(routes: RoutesJson, namespace: string, deployment: string): { deployment: string; predictor: string; percent: number }[] {
  return restRoute(routes, namespace, deployment).mirrors.map((m) => ({ deployment: m.deployment, predictor: m.predictor, percent: m.percent }));
}

export interface SplitRow {
  readonly predictor: string;
  readonly count: number;
  /** Observed percent of the named answers. */
  readonly observed: number;
  /** Configured percent (undefined: not expected at all). */
  readonly expected: number | undefined;
  /** Allowed distance in percentage points. */
  readonly allowed: number;
  readonly ok: boolean;
}

export interface SplitReport {
  readonly total: number;
  /** Answers without the predictor header (gateway started without --predictor-header, or a non-gateway answer). */
  readonly unnamed: number;
  /** Answers by status code. */
  readonly statuses: Readonly<Record<string, number>>;
  readonly rows: readonly SplitRow[];
  readonly ok: boolean;
}

/**
 * Observed split against the expected one. Each predictor may be off by `tolerance` percentage
 * points, or by default by 4 standard deviations of a binomial share (plus half a point), so an
 * honest split fails about once in 15,000 runs; a 0% predictor must get nothing.
 */
export function splitReport(
  counts: Readonly<Record<string, number>>,
  statuses: Readonly<Record<string, number>>,
  unnamed: number,
  expected: Readonly<Record<string, number>>,
  tolerance?: number,
): SplitReport {
  const named = Object.values(counts).reduce((a, b) => a + b, 0);
  const names = [...new Set([...Object.keys(expected), ...Object.keys(counts)])].sort();
  const rows = names.map((predictor): SplitRow => {
    const count = counts[predictor] ?? 0;
    const observed = named > 0 ? (count / named) * 100 : 0;
    const exp = expected[predictor];
    const p = (exp ?? 0) / 100;
    const allowed = exp === 0 || exp === undefined ? 0 : (tolerance ?? 0.5 + 400 * Math.sqrt((p * (1 - p)) / Math.max(1, named)));
    const ok = exp === undefined || exp === 0 ? count === 0 : Math.abs(observed - exp) <= allowed;
    return { predictor, count, observed: Math.round(observed * 100) / 100, expected: exp, allowed: Math.round(allowed * 100) / 100, ok };
  });
  return { total: named + unnamed, unnamed, statuses, rows, ok: named > 0 && unnamed === 0 && rows.every((r) => r.ok) };
}

export function formatSplitReport(r: SplitReport): string {
  const lines = [
    `observed split over ${r.total} answers (statuses: ${
      Object.entries(r.statuses)
        .map(([s, n]) => `${s}×${n}`)
        .join(' ') || 'none'
    })`,
  ];
  lines.push('  predictor                 answers   observed   expected   allowed');
  for (const x of r.rows) {
    lines.push(
      `  ${x.predictor.padEnd(24)} ${String(x.count).padStart(8)} ${`${x.observed.toFixed(2)}%`.padStart(10)} ${(x.expected === undefined ? 'none' : `${x.expected}%`).padStart(10)} ${`±${x.allowed}`.padStart(9)}  ${x.ok ? 'ok' : 'OFF'}`,
    );
  }
  if (r.unnamed) lines.push(`  ${r.unnamed} answers had no x-seldon-predictor header: start the gateway with --predictor-header`);
  lines.push(r.ok ? 'split OK' : 'split NOT as configured');
  return lines.join('\n');
}

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text exposition → samples. */
export function parsePrometheus(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    const re = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
    for (let l = re.exec(m[2] ?? ''); l !== null; l = re.exec(m[2] ?? '')) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function sumSamples(samples: readonly PromSample[], name: string, labels: Readonly<Record<string, string>> = {}): number {
  let sum = 0;
  for (const s of samples) if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  return sum;
}

export interface ShadowRow {
  readonly shadow: string;
  readonly percent: number;
  /** Mirrors expected for the requests sent (percent applied). */
  readonly expected: number;
  readonly mirrored: number;
  readonly droppedInFlight: number;
  readonly droppedBodySize: number;
  readonly droppedBreaker: number;
  readonly failed: number;
  readonly agree: number;
  readonly disagree: number;
  readonly skipped: number;
  /** agree / (agree + disagree), percent; null when nothing was compared. */
  readonly agreement: number | null;
}

/** Shadow outcomes for the requests sent: metric differences between two scrapes of one gateway. */
export function shadowReport(
  before: readonly PromSample[],
  after: readonly PromSample[],
  namespace: string,
  mirrors: readonly { deployment: string; predictor: string; percent: number }[],
  sent: number,
): ShadowRow[] {
  return mirrors.map((m) => {
    const labels = { namespace, deployment: m.deployment, predictor: m.predictor, protocol: 'rest' };
    const delta = (name: string, extra: Record<string, string>) => sumSamples(after, name, { ...labels, ...extra }) - sumSamples(before, name, { ...labels, ...extra });
    const outcome = (result: string) => delta('seldon_gateway_shadow_requests_total', { result });
    const compared = (result: string) => delta('seldon_gateway_shadow_comparisons_total', { result });
    const agree = compared('agree');
    const disagree = compared('disagree');
    return {
      shadow: `${m.deployment}/${m.predictor}`,
      percent: m.percent,
      expected: Math.round((sent * m.percent) / 100),
      mirrored: outcome('mirrored'),
      droppedInFlight: outcome('dropped_in_flight'),
      droppedBodySize: outcome('dropped_body_size'),
      droppedBreaker: outcome('dropped_breaker'),
      failed: outcome('failed'),
      agree,
      disagree,
      skipped: compared('skipped'),
      agreement: agree + disagree > 0 ? Math.round((agree / (agree + disagree)) * 1000) / 10 : null,
    };
  });
}

export function formatShadowReport(rows: readonly ShadowRow[], sent: number): string {
  const lines = [`shadows of ${sent} requests`];
  for (const r of rows) {
    lines.push(
      `  ${r.shadow} (mirror ${r.percent}%): mirrored ${r.mirrored} of ~${r.expected}, dropped ${r.droppedInFlight + r.droppedBodySize + r.droppedBreaker} (in flight ${r.droppedInFlight}, body size ${r.droppedBodySize}, breaker ${r.droppedBreaker}), failed ${r.failed}`,
      `    compared: ${r.agree} agree, ${r.disagree} disagree, ${r.skipped} skipped${r.agreement === null ? ' (comparison off? start the gateway with --shadow-compare)' : `: ${r.agreement}% agreement`}`,
    );
  }
  return lines.join('\n');
}
