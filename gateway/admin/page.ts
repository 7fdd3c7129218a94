/**
 * The diagnostics page at `/` on the admin port (and its data at `/diagnostics`): every
 * SeldonDeployment with its state and problems, its routes with each predictor's configured
 * weight beside the split observed over the last few minutes, status codes, timeouts and
 * retries, each shadow's mirror rate, drops, failures and agreement with the primary, and the
 * last disagreeing answer pairs.
 *
 * Plain server-rendered HTML; a small script re-fetches the page every few seconds and swaps
 * the content in (`?refresh=<seconds>`, default 10; a checkbox pauses it). Pure functions of
 * the table and the observed window (observed.ts): no I/O here.
 */
import { tableJson, type BackendJson, type RouteJson } from '../../routing/describe.js';
import type { DeploymentState, RouteGroup, RouteTable } from '../../routing/types.js';
import type { ObservedWindow, RequestCounts } from '../observe/observed.js';
import type { Disagreement } from '../observe/shadow-compare.js';
import { steeringHtml, STEERING_STYLE, type SteeringJson } from './steering-html.js';

export interface PageSettings {
  readonly predictorHeader: boolean;
  readonly shadowCompare: boolean;
  readonly accessLogSample: number;
  /** Processes serving traffic. */
  readonly workers: number;
}

export interface MemberView extends BackendJson {
  /** Requests this predictor answered over the window (primary traffic of this route's protocol). */
  readonly observed: RequestCounts;
  /** Its share of the route's observed requests, in percent; null without traffic. */
  readonly observedPercent: number | null;
}

export interface MirrorView extends BackendJson {
  /** Outcomes over the window: mirrored, dropped_in_flight, dropped_body_size, dropped_breaker, failed. */
  readonly outcomes: Readonly<Record<string, number>>;
  readonly mirrored: number;
  readonly dropped: number;
  readonly failed: number;
  /** Mirrored requests per second over the window. */
  readonly perSecond: number | null;
  readonly comparisons: { readonly agree: number; readonly disagree: number; readonly skipped: number };
  /** agree / (agree + disagree) in percent; null when nothing was compared. */
  readonly agreement: number | null;
}

export interface RouteView {
  readonly kind: 'rest' | 'grpc';
  /** The match as text: prefix or regex, header constraints, host, gRPC identity. */
  readonly match: string;
  readonly observedTotal: number;
  readonly members: readonly MemberView[];
  readonly mirrors: readonly MirrorView[];
  readonly warnings: readonly string[];
}

export interface DeploymentView {
  readonly namespace: string;
  readonly name: string;
  readonly ambassadorId: string;
  readonly state: DeploymentState;
  readonly reasons: readonly string[];
  readonly routes: readonly RouteView[];
  /** A rollout or bandit steering its weights (gateway/steer/describe.ts). */
  readonly steering?: SteeringJson;
}

export interface DiagnosticsJson {
  readonly generation: number;
  readonly appliedAt: string;
  readonly ambassadorId: string;
  readonly singleNamespace: boolean;
  readonly window: { readonly seconds: number; readonly from: string; readonly to: string };
  readonly counts: Readonly<Record<DeploymentState, number>>;
  readonly sourceProblems: Readonly<Record<string, string>>;
  readonly settings: PageSettings;
  readonly deployments: readonly DeploymentView[];
  /** The last disagreeing pairs, newest first. */
  readonly disagreements: readonly Disagreement[];
}

export interface DiagnosticsInput {
  readonly table: RouteTable;
  readonly appliedAt: Date;
  readonly problems: ReadonlyMap<string, string>;
  readonly window: ObservedWindow;
  readonly disagreements: readonly Disagreement[];
  readonly settings: PageSettings;
  /** Rollouts and bandits by deployment key. */
  readonly steering?: ReadonlyMap<string, SteeringJson>;
  /** A steered group with its live shares, shown as its weights. */
  readonly steer?: (group: RouteGroup) => RouteGroup;
}

const round1 = (n: number): number => Math.round(n * 10) / 10;

function matchText(r: RouteJson): string {
  const m = r.match;
  const parts: string[] = [];
  if (m.grpc) parts.push(`seldon=${m.grpc.seldon} namespace=${m.grpc.namespace}`);
  else if (m.prefix !== undefined) parts.push(m.prefix);
  else if (m.regex !== undefined) parts.push(`~${m.regex}`);
  if (m.grpc && m.prefix !== undefined && m.prefix !== '/') parts.push(m.prefix);
  if (m.host !== undefined) parts.push(`host ${m.host}`);
  if (m.headers.length) parts.push(`[${m.headers.join(', ')}]`);
  return parts.join(' ');
}

function routeView(r: RouteJson, w: ObservedWindow): RouteView {
  const observed = r.members.map((b) => w.requests(b.namespace, b.deployment, b.predictor, r.kind));
  const total = observed.reduce((s, o) => s + o.total, 0);
  const members = r.members.map((b, i) => ({ ...b, observed: observed[i]!, observedPercent: total > 0 ? round1((observed[i]!.total / total) * 100) : null }));
  const mirrors = r.mirrors.map((b): MirrorView => {
    const outcomes = w.shadows(b.namespace, b.deployment, b.predictor, r.kind);
    const c = w.comparisons(b.namespace, b.deployment, b.predictor, r.kind);
    const mirrored = outcomes.mirrored ?? 0;
    const failed = outcomes.failed ?? 0;
    const dropped = (outcomes.dropped_in_flight ?? 0) + (outcomes.dropped_body_size ?? 0) + (outcomes.dropped_breaker ?? 0);
    const agree = c.agree ?? 0;
    const disagree = c.disagree ?? 0;
    return {
      ...b,
      outcomes,
      mirrored,
      dropped,
      failed,
      perSecond: w.seconds > 0 ? Math.round(((mirrored + failed) / w.seconds) * 100) / 100 : null,
      comparisons: { agree, disagree, skipped: c.skipped ?? 0 },
      agreement: agree + disagree > 0 ? round1((agree / (agree + disagree)) * 100) : null,
    };
  });
  return { kind: r.kind, match: matchText(r), observedTotal: total, members, mirrors, warnings: r.warnings };
}

export function diagnostics(input: DiagnosticsInput): DiagnosticsJson {
  const t = tableJson(input.table, input.appliedAt, input.steer);
  const counts: Record<DeploymentState, number> = { accepted: 0, degraded: 0, rejected: 0, skipped: 0 };
  for (const d of t.deployments) counts[d.state]++;
  const w = input.window;
  return {
    generation: t.generation,
    appliedAt: input.appliedAt.toISOString(),
    ambassadorId: t.ambassadorId,
    singleNamespace: t.singleNamespace,
    window: { seconds: Math.round(w.seconds), from: w.from.toISOString(), to: w.to.toISOString() },
    counts,
    sourceProblems: Object.fromEntries(input.problems),
    settings: input.settings,
    deployments: t.deployments.map((d) => {
      const steering = input.steering?.get(`${d.namespace}/${d.name}`);
      return {
        namespace: d.namespace,
        name: d.name,
        ambassadorId: d.ambassadorId,
        state: d.state,
        reasons: d.reasons,
        routes: d.routes.map((r) => routeView(r, w)),
        ...(steering ? { steering } : {}),
      };
    }),
    disagreements: [...input.disagreements].reverse(),
  };
}

// ---- HTML ------------------------------------------------------------------------------------

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESC[c]!);

const ms = (n: number): string => (n === 0 ? 'none' : n % 1000 === 0 && n >= 1000 ? `${n / 1000} s` : `${n} ms`);
const pct = (n: number | null): string => (n === null ? '–' : `${n}%`);

function duration(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  return s ? `${m} min ${s} s` : `${m} min`;
}

function codes(c: Readonly<Record<string, number>>): string {
  const entries = Object.entries(c).sort(([a], [b]) => Number(a) - Number(b));
  if (!entries.length) return '–';
  return entries.map(([code, n]) => `<span class="code ${Number(code) >= 500 || (Number(code) > 0 && Number(code) < 100) ? 'bad' : Number(code) >= 400 ? 'warn' : 'ok'}">${esc(code)}×${n}</span>`).join(' ');
}

function retries(b: BackendJson): string {
  return b.retry ? `${esc(b.retry.retryOn)} ×${b.retry.numRetries}${b.retry.perTryTimeoutMs ? `, ${ms(b.retry.perTryTimeoutMs)} per try` : ''}` : 'none';
}

/** Observed share far from the configured weight (only meaningful with enough traffic). */
function drifts(m: MemberView, total: number): boolean {
  return total >= 100 && m.observedPercent !== null && Math.abs(m.observedPercent - m.percent) > 10;
}

function routeHtml(r: RouteView, owner: string): string {
  const rows = r.members
    .map(
      (m) => `<tr class="member${m.deployment !== owner ? ' foreign' : ''}${drifts(m, r.observedTotal) ? ' drift' : ''}" data-backend="${esc(m.id)}">
  <td class="predictor">${esc(m.deployment !== owner ? `${m.deployment}/${m.predictor}` : m.predictor)}</td>
  <td class="weight num">${m.percent}%</td>
  <td class="observed num">${pct(m.observedPercent)}</td>
  <td class="count num">${m.observed.total}</td>
  <td class="codes">${codes(m.observed.codes)}</td>
  <td class="timeout num">${ms(m.timeoutMs)}</td>
  <td class="idle num">${ms(m.idleTimeoutMs)}</td>
  <td class="retries">${retries(m)}</td>
  <td class="upstream">${esc(m.upstream)}${m.tls ? ' (TLS)' : ''}</td>
</tr>`,
    )
    .join('\n');
  const mirrors = r.mirrors.length
    ? `<table class="mirrors">
<thead><tr><th>Shadow</th><th>Mirror</th><th>Mirrored</th><th>Rate</th><th>Dropped</th><th>Failed</th><th>Agree</th><th>Disagree</th><th>Skipped</th><th>Agreement</th><th>Timeout</th><th>Upstream</th></tr></thead>
<tbody>
${r.mirrors
  .map(
    (m) => `<tr class="mirror${m.comparisons.disagree > 0 ? ' disagreeing' : ''}${m.dropped + m.failed > 0 ? ' lossy' : ''}" data-backend="${esc(m.id)}">
  <td class="predictor">${esc(m.deployment !== owner ? `${m.deployment}/${m.predictor}` : m.predictor)}</td>
  <td class="weight num">${m.percent}%</td>
  <td class="mirrored num">${m.mirrored}</td>
  <td class="rate num">${m.perSecond === null ? '–' : `${m.perSecond}/s`}</td>
  <td class="dropped num" title="${esc(Object.entries(m.outcomes).filter(([k]) => k.startsWith('dropped')).map(([k, v]) => `${k}: ${v}`).join(', '))}">${m.dropped}</td>
  <td class="failed num">${m.failed}</td>
  <td class="agree num">${m.comparisons.agree}</td>
  <td class="disagree num">${m.comparisons.disagree}</td>
  <td class="skipped num">${m.comparisons.skipped}</td>
  <td class="agreement num">${pct(m.agreement)}</td>
  <td class="timeout num">${ms(m.timeoutMs)}</td>
  <td class="upstream">${esc(m.upstream)}${m.tls ? ' (TLS)' : ''}</td>
</tr>`,
  )
  .join('\n')}
</tbody></table>`
    : '';
  const warnings = r.warnings.length ? `<ul class="warnings">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : '';
  return `<div class="route" data-kind="${r.kind}">
<h3><span class="kind">${r.kind === 'rest' ? 'REST' : 'gRPC'}</span> <code class="match">${esc(r.match)}</code> <span class="total">${r.observedTotal} requests</span></h3>
${warnings}
<table class="members">
<thead><tr><th>Predictor</th><th>Weight</th><th>Observed</th><th>Requests</th><th>Status codes</th><th>Timeout</th><th>Idle</th><th>Retries</th><th>Upstream</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="9" class="none">shadows only: nothing is routed here</td></tr>'}
</tbody></table>
${mirrors}
</div>`;
}

function deploymentHtml(d: DeploymentView): string {
  const key = `${d.namespace}/${d.name}`;
  const problems = d.reasons.length ? `<ul class="problems">${d.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : '';
  const routes = d.routes.length ? d.routes.map((r) => routeHtml(r, d.name)).join('\n') : d.state === 'accepted' || d.state === 'degraded' ? '<p class="none">no routes</p>' : '';
  return `<section class="deployment state-${d.state}" data-deployment="${esc(key)}">
<h2>${esc(key)} <span class="state">${d.state}</span>${d.ambassadorId !== 'default' ? ` <span class="ambassador-id">ambassador-id ${esc(d.ambassadorId)}</span>` : ''}</h2>
${problems}
${d.steering ? steeringHtml(d.steering) : ''}
${routes}
</section>`;
}

function disagreementHtml(x: Disagreement): string {
  return `<article class="disagreement">
<h3><time>${esc(x.at)}</time> ${esc(`${x.namespace}/${x.deployment}`)} (${x.protocol}): <span class="pair">primary ${esc(x.primary.predictor)} · shadow ${esc(x.shadow.deployment !== x.primary.deployment ? `${x.shadow.deployment}/` : '')}${esc(x.shadow.predictor)}</span></h3>
<p class="why">${esc(x.why)}</p>
<div class="bodies"><div><h4>primary ${x.primary.status}</h4><pre class="primary-body">${esc(x.primary.body)}</pre></div><div><h4>shadow ${x.shadow.status}</h4><pre class="shadow-body">${esc(x.shadow.body)}</pre></div></div>
</article>`;
}

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1d2733;background:#f6f7f9}
header.top{background:#1d2733;color:#fff;padding:8px 16px;display:flex;gap:16px;align-items:center}
header.top h1{font-size:16px;margin:0}
header.top a{color:#b8d4ff}
main{padding:8px 16px}
.summary span{margin-right:12px}
section.deployment{background:#fff;border:1px solid #d5d9e0;border-left:6px solid #3b9a57;border-radius:4px;margin:10px 0;padding:6px 12px}
section.state-degraded{border-left-color:#d49b00}
section.state-rejected{border-left-color:#c62828;background:#fff5f5}
section.state-skipped{border-left-color:#9aa3ad;color:#5b6570}
h2{font-size:15px;margin:4px 0}
h2 .state{font-size:12px;text-transform:uppercase;padding:1px 6px;border-radius:3px;background:#e6f4ea}
.state-degraded h2 .state{background:#fff3cd}.state-rejected h2 .state{background:#fdecea;color:#c62828}.state-skipped h2 .state{background:#eceff1}
.ambassador-id{font-size:12px;color:#5b6570}
ul.problems li{color:#c62828;font-weight:600}.state-skipped ul.problems li{color:#5b6570;font-weight:400}
ul.warnings li,.warn-list li{color:#8a6100}
h3{font-size:13px;margin:8px 0 4px}h3 .total{color:#5b6570;font-weight:400}
table{border-collapse:collapse;margin:2px 0 8px;min-width:60%}
th,td{border-bottom:1px solid #e3e6ea;padding:2px 8px;text-align:left;white-space:nowrap}
th{font-size:12px;color:#5b6570;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td.observed{color:#c62828;font-weight:700}
tr.disagreeing td.agreement,tr.disagreeing td.disagree{color:#c62828;font-weight:700}
tr.lossy td.dropped,tr.lossy td.failed{color:#8a6100;font-weight:700}
.code.bad{color:#c62828}.code.warn{color:#8a6100}
.none{color:#5b6570;font-style:italic}
article.disagreement{background:#fff;border:1px solid #f0c0c0;border-radius:4px;margin:8px 0;padding:6px 12px}
.bodies{display:flex;gap:12px}.bodies>div{flex:1;min-width:0}
pre{background:#f3f4f6;padding:6px;white-space:pre-wrap;word-break:break-all;max-height:12em;overflow:auto;margin:0}
.source-problems li{color:#c62828}
`;

const SCRIPT = `
(function () {
  var q = new URLSearchParams(location.search).get('refresh');
  var every = q !== null && Number(q) > 0 ? Number(q) : 10;
  var busy = false;
  async function refresh() {
    if (busy || !document.getElementById('auto').checked) return;
    busy = true;
    try {
      var r = await fetch(location.href, { cache: 'no-store' });
      if (!r.ok) throw new Error(String(r.status));
      var doc = new DOMParser().parseFromString(await r.text(), 'text/html');
      var next = doc.querySelector('main');
      if (next) document.querySelector('main').replaceWith(next);
      document.getElementById('status').textContent = 'updated ' + new Date().toLocaleTimeString();
    } catch (e) {
      document.getElementById('status').textContent = 'refresh failed: ' + e.message;
    } finally {
      busy = false;
    }
  }
  setInterval(refresh, every * 1000);
})();
`;

export function renderPage(d: DiagnosticsJson): string {
  const problems = Object.entries(d.sourceProblems);
  const s = d.settings;
  const order: Record<DeploymentState, number> = { rejected: 0, degraded: 1, accepted: 2, skipped: 3 };
  const deployments = [...d.deployments].sort((a, b) => order[a.state] - order[b.state] || (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1));
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>seldon-gateway diagnostics</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>${STYLE}${STEERING_STYLE}</style></head>
<body>
<header class="top"><h1>seldon-gateway</h1><label><input type="checkbox" id="auto" checked> auto-refresh</label><span id="status"></span>
<nav><a href="/routes">/routes</a> · <a href="/diagnostics">/diagnostics</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></nav></header>
<main data-generation="${d.generation}">
<p class="summary"><span>generation <b id="generation">${d.generation}</b></span><span>applied <time>${esc(d.appliedAt)}</time></span><span>ambassador-id <b>${esc(d.ambassadorId)}</b>${d.singleNamespace ? ' (single namespace)' : ''}</span>
<span id="window" data-seconds="${d.window.seconds}">observed over the last ${duration(d.window.seconds)}</span><span>workers ${s.workers}</span></p>
<p class="summary counts"><span class="accepted">${d.counts.accepted} accepted</span><span class="degraded">${d.counts.degraded} degraded</span><span class="rejected">${d.counts.rejected} rejected</span><span class="skipped">${d.counts.skipped} skipped</span>
<span>predictor header ${s.predictorHeader ? 'on' : 'off'}</span><span>shadow comparison ${s.shadowCompare ? 'on' : 'off'}</span><span>access log ${s.accessLogSample > 0 ? `${s.accessLogSample * 100}%` : 'off'}</span></p>
${problems.length ? `<ul class="source-problems">${problems.map(([w, m]) => `<li><code>${esc(w)}</code>: ${esc(m)}</li>`).join('')}</ul>` : ''}
${deployments.map(deploymentHtml).join('\n') || '<p class="none">no SeldonDeployments</p>'}
<section id="disagreements"><h2>Last shadow disagreements</h2>
${d.disagreements.length ? d.disagreements.map(disagreementHtml).join('\n') : `<p class="none">${s.shadowCompare ? 'none' : 'shadow comparison is off (--shadow-compare)'}</p>`}
</section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}
