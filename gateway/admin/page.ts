/**
 * The diagnostics page at `/` on the admin port (and its data at `/diagnostics`): every
 * SeldonDeployment with its state and problems beside its traffic health over the last few
 * minutes (requests, error ratio, 4xx and 5xx in colour, request-rate and error-rate charts),
 * problems first: rejected, degraded, then those answering errors. Its routes with each
 * predictor's configured weight against the observed share as a bar, status codes, p50/p99
 * request duration, timeouts, retries and hedging; routes without requests folded; each shadow's mirror
 * rate, drops, failures and agreement with the primary as a gauge; the last disagreeing answer
 * pairs. `/?deployment=<namespace>/<name>` shows one deployment (each name links there).
 *
 * Plain server-rendered HTML; a small script re-fetches the page every few seconds and swaps
 * the content in (`?refresh=<seconds>`, default 10; a checkbox pauses it). Pure functions of the
 * view model (admin/page-model.ts): no I/O here.
 */
import type { BackendJson } from '../../routing/table/describe.js';
import type { Protocol } from '../../routing/types.js';
import { codeClass } from '../observe/code-class.js';
import type { Disagreement } from '../observe/shadow-compare.js';
import type { EjectedEndpointJson } from '../observe/ejections-view.js';
import { agreementGauge, errorChart, rateChart, shareBar } from './charts.js';
import type { RedisStatus } from '../auth/redis.js';
import type { KeySetState } from '../auth/jwt-keys.js';
import { steeringHtml, STEERING_STYLE } from './steering-html.js';
import type { SinkState } from '../payload-log/view.js';
import { round1, type DeploymentView, type DiagnosticsJson, type HealthView, type MemberView, type PredictorFlowView, type RouteView } from './page-model.js';

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

function codes(kind: Protocol, c: Readonly<Record<string, number>>): string {
  const entries = Object.entries(c).sort(([a], [b]) => Number(a) - Number(b));
  if (!entries.length) return '–';
  const cls = (code: string): string => {
    const k = codeClass(kind, code);
    return k === '5xx' || k === 'other' ? 'bad' : k === '4xx' ? 'warn' : 'ok';
  };
  return entries.map(([code, n]) => `<span class="code ${cls(code)}">${esc(code)}×${n}</span>`).join(' ');
}

/** Seconds as ms (or s from 10 s), three significant digits. */
function seconds(v: number | null): string {
  if (v === null) return '–';
  return v >= 10 ? `${Number(v.toPrecision(3))} s` : `${Number((v * 1000).toPrecision(3))} ms`;
}

/** The error ratio's class: bad with any 5xx, warn with 4xx only, ok without errors, idle without requests. */
function errorLevel(c4xx: number, c5xx: number, total: number): 'bad' | 'warn' | 'ok' | 'idle' {
  return total === 0 ? 'idle' : c5xx > 0 ? 'bad' : c4xx > 0 ? 'warn' : 'ok';
}

function retries(b: BackendJson): string {
  const r = b.retry ? `${esc(b.retry.retryOn)} ×${b.retry.numRetries}${b.retry.perTryTimeoutMs ? `, ${ms(b.retry.perTryTimeoutMs)} per try` : ''}` : 'none';
  const hedged = b.hedge ? `${r}<br><span class="hedge">${esc(hedging(b.hedge))}</span>` : r;
  // Where its requests go when it cannot answer them (docs/routing.md#fallback-models).
  return b.fallback ? `${hedged}<br><span class="fallback">${esc(`falls back to ${b.fallback.to} on ${b.fallback.on.join(', ')}`)}</span>` : hedged;
}

/** A predictor's hedging (docs/routing.md#hedged-requests), as its settings say it. */
function hedging(h: NonNullable<BackendJson['hedge']>): string {
  const bounds = [h.minMedians > 0 ? `≥ ${h.minMedians}× median` : '', h.minMs > 0 ? `≥ ${ms(h.minMs)}` : '', h.maxMs !== null ? `≤ ${ms(h.maxMs)}` : ''].filter(Boolean).join(', ');
  return `hedged after ${h.after}${bounds ? ` (${bounds})` : ''}, budget ${h.budgetPercent}%, ${h.maxAttempts} attempts at most`;
}

/** Observed share far from the configured weight (only meaningful with enough traffic, and weights that held over the window). */
function drifts(m: MemberView, r: RouteView): boolean {
  return r.weightsMoved === null && r.observedTotal >= 100 && m.observedPercent !== null && Math.abs(m.observedPercent - m.percent) > 10;
}

function routeHtml(r: RouteView, owner: string): string {
  const rows = r.members
    .map((m) => {
      const drift = drifts(m, r);
      const level = errorLevel(m.c4xx, m.c5xx, m.observed.total);
      return `<tr class="member${m.deployment !== owner ? ' foreign' : ''}${drift ? ' drift' : ''} errors-${level}" data-backend="${esc(m.id)}">
  <td class="predictor">${esc(m.deployment !== owner ? `${m.deployment}/${m.predictor}` : m.predictor)}</td>
  <td class="weight num">${m.percent}%</td>
  <td class="share-cell">${shareBar(m.percent, m.observedPercent, drift)}</td>
  <td class="observed num">${pct(m.observedPercent)}</td>
  <td class="count num">${m.observed.total}</td>
  <td class="error-ratio num">${m.observed.total > 0 ? `${round1(((m.c4xx + m.c5xx) / m.observed.total) * 100)}%` : '–'}</td>
  <td class="codes">${codes(r.kind, m.observed.codes)}</td>
  <td class="p50 num">${seconds(m.latency.p50)}</td>
  <td class="p99 num">${seconds(m.latency.p99)}</td>
  <td class="timeout num">${ms(m.timeoutMs)}</td>
  <td class="idle num">${ms(m.idleTimeoutMs)}</td>
  <td class="retries">${retries(m)}</td>
  <td class="upstream">${esc(m.upstream)}${m.tls ? ' (TLS)' : ''}</td>
</tr>`;
    })
    .join('\n');
  const mirrors = r.mirrors.length
    ? `<table class="mirrors">
<thead><tr><th>Shadow</th><th>Mirror</th><th>Agreement</th><th>Mirrored</th><th>Rate</th><th>Dropped</th><th>Failed</th><th>Agree</th><th>Disagree</th><th>Skipped</th><th>Agree %</th><th>Timeout</th><th>Upstream</th></tr></thead>
<tbody>
${r.mirrors
  .map(
    (m) => `<tr class="mirror${m.comparisons.disagree > 0 ? ' disagreeing' : ''}${m.dropped + m.failed > 0 ? ' lossy' : ''}" data-backend="${esc(m.id)}">
  <td class="predictor">${esc(m.deployment !== owner ? `${m.deployment}/${m.predictor}` : m.predictor)}</td>
  <td class="weight num">${m.percent}%</td>
  <td class="gauge-cell">${agreementGauge(m.agreement)}</td>
  <td class="mirrored num">${m.mirrored}</td>
  <td class="rate num">${m.perSecond === null ? '–' : `${m.perSecond}/s`}</td>
  <td class="dropped num" title="${esc(
    Object.entries(m.outcomes)
      .filter(([k]) => k.startsWith('dropped'))
      .map(([k, v]) => `${k}: ${v}`)
      .join(', '),
  )}">${m.dropped}</td>
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
  return `<div class="route${r.idle ? ' idle-route' : ''}" data-kind="${r.kind}">
<h3><span class="kind">${r.kind === 'rest' ? 'REST' : 'gRPC'}</span> <code class="match">${esc(r.match)}</code> <span class="total">${r.observedTotal} requests</span></h3>
${warnings}${
    r.weightsMoved
      ? `<p class="weights-moved">Observed shares are not held against the weights: ${esc(r.weightsMoved.why)}${r.weightsMoved.since ? ` at <time>${esc(r.weightsMoved.since.slice(11, 19))}</time>, within the window, which still holds traffic from before` : ''}.</p>`
      : ''
  }
<table class="members">
<thead><tr><th>Predictor</th><th>Weight</th><th>Configured / observed</th><th>Observed</th><th>Requests</th><th>Errors</th><th>Status codes</th><th>p50</th><th>p99</th><th>Timeout</th><th>Idle</th><th>Retries</th><th>Upstream</th></tr></thead>
<tbody>
${rows || '<tr><td colspan="13" class="none">shadows only: nothing is routed here</td></tr>'}
</tbody></table>
${mirrors}
</div>`;
}

function flowHtml(flow: readonly PredictorFlowView[]): string {
  const rows = flow
    .map((f) => {
      const s = f.settings;
      const refused = f.refused[0] + f.refused[1] + f.refused[2];
      return `<tr class="flow-predictor${refused > 0 ? ' refusing' : ''}" data-predictor="${esc(f.predictor)}">
  <td class="predictor">${esc(f.predictor)}</td>
  <td class="limit num">${f.limit}</td>
  <td class="inflight num">${f.inflight}</td>
  <td class="queued num">${f.queued}</td>
  <td class="refused num" title="critical ${f.refused[0]}, standard ${f.refused[1]}, sheddable ${f.refused[2]}">${refused}</td>
  <td class="settings">${esc(`${s.concurrency === 'adaptive' ? 'adaptive' : `${s.concurrency} per endpoint`}, queue ${s.queue}, queueTimeout ${ms(s.queueTimeoutMs)}${s.tenantHeader ? `, tenant ${s.tenantHeader}` : ''}${s.scaleFromZeroMs ? `, scaleFromZero ${ms(s.scaleFromZeroMs)}` : ''}`)}</td>
</tr>`;
    })
    .join('\n');
  return `<table class="flow">
<thead><tr><th>Flow control</th><th>Limit</th><th>In flight</th><th>Queued</th><th>Refused</th><th>Settings</th></tr></thead>
<tbody>
${rows}
</tbody></table>`;
}

function healthHtml(h: HealthView): string {
  const level = errorLevel(h.c4xx, h.c5xx, h.requests);
  return `<div class="health errors-${level}">
<span class="requests"><b>${h.requests}</b> requests${h.perSecond === null ? '' : ` · ${h.perSecond}/s`}</span>
<span class="error-ratio">${h.errorPercent === null ? 'no traffic' : `${h.errorPercent}% errors`}</span>
<span class="c4xx${h.c4xx > 0 ? ' warn' : ''}">4xx ${h.c4xx}</span>
<span class="c5xx${h.c5xx > 0 ? ' bad' : ''}">5xx ${h.c5xx}</span>
<span class="charts">${rateChart(h.timeline)}${errorChart(h.timeline)}</span>
</div>`;
}

/** Where a deployment's own view is: the page with `?deployment=`. */
const deploymentLink = (key: string): string => `/?deployment=${encodeURIComponent(key)}`;

function deploymentHtml(d: DeploymentView): string {
  const key = `${d.namespace}/${d.name}`;
  const problems = d.reasons.length ? `<ul class="problems">${d.reasons.map((r) => `<li>${esc(r)}</li>`).join('')}</ul>` : '';
  const active = d.routes.filter((r) => !r.idle);
  const idle = d.routes.filter((r) => r.idle);
  const folded = idle.length
    ? `<details class="idle-routes" data-key="${esc(key)}"><summary>${idle.length} idle route${idle.length === 1 ? '' : 's'} (no requests in the window)</summary>
${idle.map((r) => routeHtml(r, d.name)).join('\n')}
</details>`
    : '';
  const routes = d.routes.length ? `${active.map((r) => routeHtml(r, d.name)).join('\n')}\n${folded}` : d.state === 'accepted' || d.state === 'degraded' ? '<p class="none">no routes</p>' : '';
  const served = d.state === 'accepted' || d.state === 'degraded';
  return `<section class="deployment state-${d.state}" id="${esc(key)}" data-deployment="${esc(key)}">
<h2><a class="deployment-link" href="${esc(deploymentLink(key))}">${esc(key)}</a> <span class="state">${d.state}</span>${d.ambassadorId !== 'default' ? ` <span class="ambassador-id">ambassador-id ${esc(d.ambassadorId)}</span>` : ''}</h2>
${served ? healthHtml(d.health) : ''}
${problems}
${d.steering ? steeringHtml(d.steering) : ''}
${d.flow ? flowHtml(d.flow) : ''}
${d.ejected ? ejectedHtml(d.ejected) : ''}
${routes}
</section>`;
}

/** Endpoints ejected now: each marked, with why and until when. */
function ejectedHtml(list: readonly EjectedEndpointJson[]): string {
  const why = (r: string): string => (r === 'local_origin' ? 'failed without an answer too many times in a row' : r === 'error_rate' ? 'answered server errors where its peers did not' : r);
  const rows = list.map(
    (e) =>
      `<li class="ejected"><span class="badge bad">ejected</span> ${esc(e.predictor)} ${esc(e.address)}: ${esc(why(e.reason))}, back at ${esc(e.until.slice(11, 19))} UTC${e.workers > 1 ? ` (${e.workers} workers)` : ''}</li>`,
  );
  return `<ul class="ejected-endpoints" title="endpoint health: docs/routing.md#endpoint-health">${rows.join('')}</ul>`;
}

/**
 * Problems first: rejected, degraded, then accepted deployments answering 5xx, then 4xx (the
 * higher ratio first), then the healthy ones, busiest first, the idle ones and the skipped last.
 */
export function problemOrder(a: DeploymentView, b: DeploymentView): number {
  const rank = (d: DeploymentView): number => {
    if (d.state === 'rejected') return 0;
    if (d.state === 'degraded') return 1;
    if (d.state === 'skipped') return 6;
    const h = d.health;
    return h.c5xx > 0 ? 2 : h.c4xx > 0 ? 3 : h.requests > 0 ? 4 : 5;
  };
  const ratio = (d: DeploymentView, n: number): number => (d.health.requests > 0 ? n / d.health.requests : 0);
  return (
    rank(a) - rank(b) ||
    ratio(b, b.health.c5xx) - ratio(a, a.health.c5xx) ||
    ratio(b, b.health.c4xx) - ratio(a, a.health.c4xx) ||
    b.health.requests - a.health.requests ||
    (`${a.namespace}/${a.name}` < `${b.namespace}/${b.name}` ? -1 : 1)
  );
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
td.predictor,td.upstream,td.retries,td.codes,td.detail,td.why{white-space:normal;overflow-wrap:anywhere;min-width:6em}
td.detail,td.why{min-width:16em}td.upstream{min-width:12em}
section.deployment,section#disagreements,ul,p{overflow-wrap:anywhere}
.weights-moved{color:#5b6570;font-size:12px;margin:2px 0}
th{font-size:12px;color:#5b6570;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.drift td.observed{color:#c62828;font-weight:700}
tr.disagreeing td.agreement,tr.disagreeing td.disagree{color:#c62828;font-weight:700}
tr.lossy td.dropped,tr.lossy td.failed{color:#8a6100;font-weight:700}
.code.bad{color:#c62828;font-weight:600}.code.warn{color:#8a6100;font-weight:600}
.ejected-endpoints{list-style:none;padding:0;margin:.3em 0}.ejected .badge{background:#c62828;color:#fff;border-radius:3px;padding:0 .4em;font-size:.85em;font-weight:600}
.health{display:flex;gap:14px;align-items:center;margin:2px 0 4px;font-variant-numeric:tabular-nums}
.health .error-ratio{padding:1px 6px;border-radius:3px;font-weight:700}
.health.errors-ok .error-ratio{background:#e6f4ea;color:#256b3a}.health.errors-warn .error-ratio{background:#fff3cd;color:#8a6100}
.health.errors-bad .error-ratio{background:#fdecea;color:#c62828}.health.errors-idle .error-ratio{background:#eceff1;color:#5b6570}
.health .warn{color:#8a6100;font-weight:700}.health .bad,.summary .bad{color:#c62828;font-weight:700}
.charts{display:inline-flex;gap:6px}svg.chart{background:#fbfcfd;border:1px solid #e3e6ea}
tr.errors-bad td.error-ratio{color:#c62828;font-weight:700}tr.errors-warn td.error-ratio{color:#8a6100;font-weight:700}
.share{display:inline-block;position:relative;width:120px;height:14px;background:#eceff1;border-radius:2px;vertical-align:middle}
.share b{position:absolute;left:0;top:0;height:6px;background:#9aa3ad;border-radius:2px 2px 0 0}
.share i{position:absolute;left:0;bottom:0;height:8px;border-radius:0 0 2px 2px}
details.idle-routes{margin:4px 0;color:#5b6570}details.idle-routes summary{cursor:pointer;font-size:12px}
h2 a.deployment-link{color:inherit;text-decoration:none;border-bottom:1px dotted #9aa3ad}h2 a.deployment-link:hover{color:#3f6fb5}
p.only{background:#e3f0ff;padding:4px 8px;border-radius:3px}
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
      if (next) {
        // A fold the reader opened stays open across the refresh.
        document.querySelectorAll('details[data-key][open]').forEach(function (d) {
          next.querySelectorAll('details[data-key]').forEach(function (n) {
            if (n.className === d.className && n.getAttribute('data-key') === d.getAttribute('data-key')) n.open = true;
          });
        });
        document.querySelector('main').replaceWith(next);
      }
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

/** Which Redis the replicas share, and its primary; or why the gateway is deciding locally. */
function redisHtml(r: RedisStatus | undefined): string {
  if (r === undefined) return '<span id="redis">shared store: this instance\'s memory</span>';
  const where = `redis ${esc(r.topology)} <code>${esc(r.url)}</code>`;
  return r.connected
    ? `<span id="redis">${where}, primary <b>${esc(r.primary ?? 'unknown')}</b></span>`
    : `<span id="redis" class="bad">${where}: unavailable, in fallback (${esc(r.reason ?? 'not connected')})</span>`;
}

/** Each JWT provider's keys: how many, how old, and the last fetch's failure (the last good set keeps verifying). */
function jwtHtml(states: readonly KeySetState[] | undefined, now: number): string {
  if (states === undefined || states.length === 0) return '';
  const one = (k: KeySetState): string => {
    const age = k.fetchedAt === null ? 'never fetched' : `fetched ${duration(Math.max(0, Math.round((now - k.fetchedAt) / 1000)))} ago`;
    const failed = k.lastError === null ? '' : `; last fetch failed: ${esc(k.lastError)}`;
    return `<span class="jwt-provider${k.lastError !== null || k.keys === 0 ? ' bad' : ''}" data-provider="${esc(k.provider)}">JWT <b>${esc(k.provider)}</b>: ${k.keys} ${k.keys === 1 ? 'key' : 'keys'}, ${age}${failed}</span>`;
  };
  return `<p class="summary" id="jwt-providers">${states.map(one).join('')}</p>`;
}

/** Each log sink: where its events go, its state, what was delivered and dropped, what waits. */
function logSinksHtml(sinks: readonly SinkState[] | undefined): string {
  if (sinks === undefined || sinks.length === 0) return '';
  const one = (k: SinkState): string => {
    const state = k.state === 'failing' ? `failing since <time>${esc(k.failingSince ?? '')}</time>` : k.state === 'idle' ? 'nothing sent yet' : 'delivering';
    const backlog = k.backlog === null ? '' : `, ${k.backlog} in its stream (oldest ${duration(Math.round(k.oldestSeconds ?? 0))})`;
    const waiting = k.bufferBytes > 0 ? `, ${k.bufferBytes} B waiting in memory` : '';
    return `<span class="log-sink${k.state === 'failing' || k.dropped > 0 ? ' bad' : ''}" data-sink="${esc(k.name)}">log sink <b>${esc(k.name)}</b> (${esc(k.type)} <code>${esc(k.target)}</code>, via ${k.via}): ${state}; ${k.delivered} delivered, ${k.dropped} dropped, ${k.retried} retried${backlog}${waiting}</span>`;
  };
  return `<p class="summary" id="log-sinks">${sinks.map(one).join('')}</p>`;
}

/** `only`: one deployment's key (`namespace/name`), from `/?deployment=`. */
export function renderPage(d: DiagnosticsJson, options: { only?: string | undefined } = {}): string {
  const problems = Object.entries(d.sourceProblems);
  const s = d.settings;
  const only = options.only;
  const deployments = d.deployments.filter((x) => only === undefined || `${x.namespace}/${x.name}` === only).sort(problemOrder);
  const erring = d.deployments.filter((x) => x.health.c5xx + x.health.c4xx > 0).length;
  const disagreements = d.disagreements.filter((x) => only === undefined || `${x.namespace}/${x.deployment}` === only);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>seldon-gateway diagnostics</title>
<meta name="viewport" content="width=device-width,initial-scale=1">
<style>${STYLE}${STEERING_STYLE}</style></head>
<body>
<header class="top"><h1>seldon-gateway</h1><label><input type="checkbox" id="auto" checked> auto-refresh</label><span id="status"></span>
<nav><a href="/routes">/routes</a> · <a href="/diagnostics">/diagnostics</a> · <a href="/metrics">/metrics</a> · <a href="/readyz">/readyz</a></nav></header>
<main data-generation="${d.generation}">
<p class="summary"><span>generation <b id="generation">${d.generation}</b></span><span>applied <time>${esc(d.appliedAt)}</time></span><span>ambassador-id <b>${esc(d.ambassadorId)}</b>${d.singleNamespace ? ' (single namespace)' : ''}</span>
<span id="window" data-seconds="${d.window.seconds}">observed over the last ${duration(d.window.seconds)}</span><span>workers ${s.workers}</span>${redisHtml(s.redis)}</p>
<p class="summary counts"><span class="accepted">${d.counts.accepted} accepted</span><span class="degraded">${d.counts.degraded} degraded</span><span class="rejected">${d.counts.rejected} rejected</span><span class="skipped">${d.counts.skipped} skipped</span>
<span class="erring${erring > 0 ? ' bad' : ''}">${erring} answering errors</span>
<span>predictor header ${s.predictorHeader ? 'on' : 'off'}</span><span>shadow comparison ${s.shadowCompare ? 'on' : 'off'}</span><span>access log ${s.accessLogSample > 0 ? `${s.accessLogSample * 100}%` : 'off'}</span></p>
${jwtHtml(s.jwtKeys, Date.parse(d.window.to))}
${logSinksHtml(s.logSinks)}
${problems.length ? `<ul class="source-problems">${problems.map(([w, m]) => `<li><code>${esc(w)}</code>: ${esc(m)}</li>`).join('')}</ul>` : ''}
${only !== undefined ? `<p class="only">showing <b>${esc(only)}</b> only · <a href="/">all deployments</a></p>` : ''}
${deployments.map(deploymentHtml).join('\n') || `<p class="none">${only !== undefined ? `no SeldonDeployment ${esc(only)}` : 'no SeldonDeployments'}</p>`}
<section id="disagreements"><h2>Last shadow disagreements</h2>
${disagreements.length ? disagreements.map(disagreementHtml).join('\n') : `<p class="none">${s.shadowCompare ? 'none' : 'shadow comparison is off (--shadow-compare)'}</p>`}
</section>
</main>
<script>${SCRIPT}</script>
</body></html>
`;
}
