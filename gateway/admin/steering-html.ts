/**
 * The admin page's panel for a steered deployment (docs/rollouts.md#the-admin-page,
 * docs/bandits.md#the-admin-page): a rollout's phase, steps, live weight, each check's value against
 * its threshold as a bar, what it waits for and its last transitions; a bandit's arms with their
 * shares, reward means and intervals, and the shares over the last hour as a chart. Pure: JSON in,
 * HTML out.
 */
import type { Check } from '../../routing/steering/rollout/state.js';
import type { BanditJson, RolloutJson, SteeringJson } from '../steer/describe.js';

export type { SteeringJson } from '../steer/describe.js';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
const esc = (s: unknown): string => String(s).replace(/[&<>"']/g, (c) => ESC[c]!);
const num = (n: number | null, digits = 3): string => (n === null || !Number.isFinite(n) ? '–' : String(Number(n.toPrecision(digits))));
const time = (ms: number): string => new Date(ms).toISOString().slice(11, 19);

export const STEERING_STYLE = `
.steering{border:1px solid #d5d9e0;border-radius:4px;padding:4px 10px;margin:6px 0;background:#fbfcfd}
.steering h3 .phase{font-size:12px;padding:1px 6px;border-radius:3px;background:#e6f4ea;margin-left:4px}
.phase-RolledBack .phase{background:#fdecea;color:#c62828}.phase-Paused .phase{background:#fff3cd}.phase-Mirroring .phase{background:#e3f0ff}
.steps span{display:inline-block;padding:0 6px;margin-right:2px;border:1px solid #d5d9e0;border-radius:3px;font-variant-numeric:tabular-nums}
.steps span.done{background:#e6f4ea}.steps span.now{background:#1d2733;color:#fff}
.bar{display:inline-block;width:160px;height:10px;background:#eceff1;border-radius:2px;position:relative;vertical-align:middle}
.bar i{position:absolute;left:0;top:0;bottom:0;background:#3b9a57;border-radius:2px}
.bar b{position:absolute;top:-2px;bottom:-2px;width:2px;background:#1d2733}
tr.verdict-fail .bar i{background:#c62828}tr.verdict-hold .bar i{background:#9aa3ad}
tr.verdict-fail td.verdict{color:#c62828;font-weight:700}tr.verdict-hold td.verdict{color:#5b6570}
.needs{color:#8a6100}.steer-warnings li{color:#8a6100}
svg.shares{background:#fff;border:1px solid #e3e6ea}
`;

/** A bar: `value` against `threshold` (the marker), on a scale up to `max` (default: one that shows both). */
function bar(value: number | null, threshold: number | null, max?: number): string {
  if (value === null) return '<span class="bar"></span>';
  const top = max ?? Math.max(Math.abs(value), Math.abs(threshold ?? 0), 1e-9) * 1.25;
  const w = Math.min(100, (Math.abs(value) / top) * 100);
  const marker = threshold === null ? '' : `<b style="left:${Math.min(100, (Math.abs(threshold) / top) * 100).toFixed(1)}%"></b>`;
  return `<span class="bar"><i style="width:${w.toFixed(1)}%"></i>${marker}</span>`;
}

const CHECK_NAMES: Record<string, string> = {
  errors: 'error rate',
  sequential: 'errors (CUSUM vs alarm)',
  burst: 'error burst (CUSUM vs alarm)',
  latencyShift: 'latency shift',
  p99: 'canary p99 (ms)',
  agreement: 'agreement (lower bound)',
};

function checkRow(name: string, c: Check): string {
  return `<tr class="check verdict-${c.verdict}" data-check="${esc(name)}"><td>${esc(CHECK_NAMES[name] ?? name)}</td><td class="num">${num(c.value)}</td><td class="num">${num(c.threshold)}</td><td>${bar(c.value, c.threshold)}</td><td class="verdict">${c.verdict}</td><td class="detail">${esc(c.detail)}</td></tr>`;
}

export function rolloutHtml(r: RolloutJson): string {
  const steps = r.steps.map((w, i) => `<span class="${i < r.step ? 'done' : i === r.step ? 'now' : ''}">${w}%</span>`).join('');
  const declared = r.step >= 0 ? r.steps[r.step] : 0;
  const checks = r.checks
    ? Object.entries(r.checks)
        .map(([n, c]) => checkRow(n, c as Check))
        .join('')
    : '';
  const transitions = [...r.transitions]
    .reverse()
    .map((t) => `<tr><td><time>${time(t.at)}</time></td><td>${esc(t.kind)}</td><td>${esc(t.from)} → ${esc(t.to)}</td><td class="num">${t.weight}%</td><td class="why">${esc(t.reason)}</td></tr>`)
    .join('');
  return `<div class="steering rollout phase-${esc(r.phase)}" data-rollout-phase="${esc(r.phase)}">
<h3>rollout of <b>${esc(r.canary)}</b><span class="phase">${esc(r.phase)}</span> <span class="run">run ${esc(r.run)}</span>${r.leader ? ' <span class="leader">decided here</span>' : ''}${r.storeUnreachable ? ' <span class="needs">store unreachable: holding, may only roll back</span>' : ''}</h3>
<p class="steps">steps ${steps}</p>
<p>canary weight: declared <b>${declared ?? 0}%</b>, effective <b class="effective-weight">${r.weight}%</b> ${bar(r.weight, declared ?? null, 100)}${r.mirror > 0 ? ` · mirrored <b>${r.mirror}%</b>` : ''}</p>
${r.needs.length ? `<p class="needs">${r.needs.map(esc).join('; ')}</p>` : ''}
${r.warnings.length ? `<ul class="steer-warnings">${r.warnings.map((w) => `<li>${esc(w)}</li>`).join('')}</ul>` : ''}
${checks ? `<table class="checks"><thead><tr><th>check</th><th>value</th><th>threshold</th><th></th><th>verdict</th><th></th></tr></thead><tbody>${checks}</tbody></table>` : ''}
${transitions ? `<table class="transitions"><thead><tr><th>time</th><th>transition</th><th>phase</th><th>weight</th><th>why</th></tr></thead><tbody>${transitions}</tbody></table>` : '<p class="none">no transitions yet</p>'}
</div>`;
}

const COLOURS = ['#3b6fd4', '#3b9a57', '#d49b00', '#c62828', '#7b3fb5', '#00838f'];

function sharesChart(b: BanditJson): string {
  const h = b.history;
  if (h.length < 2) return '';
  const arms = Object.keys(b.arms);
  const t0 = h[0]![0];
  const span = Math.max(1, h.at(-1)![0] - t0);
  const W = 360;
  const H = 80;
  const lines = arms.map((arm, i) => {
    const pts = h.map(([t, shares]) => `${(((t - t0) / span) * W).toFixed(1)},${(H - ((shares[arm] ?? 0) / 100) * H).toFixed(1)}`).join(' ');
    return `<polyline fill="none" stroke="${COLOURS[i % COLOURS.length]}" stroke-width="1.5" points="${pts}"><title>${esc(arm)}</title></polyline>`;
  });
  return `<svg class="shares" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img" aria-label="shares over the last hour">${lines.join('')}</svg>`;
}

export function banditHtml(b: BanditJson): string {
  const rows = Object.entries(b.arms)
    .map(
      ([arm, a], i) =>
        `<tr data-arm="${esc(arm)}"><td><span style="color:${COLOURS[i % COLOURS.length]}">■</span> ${esc(arm)}</td><td class="num share">${num(a.share, 3)}%</td><td>${bar(a.share, null, 100)}</td><td class="num">${num(a.mean)} [${num(a.interval[0])}, ${num(a.interval[1])}]</td><td class="num">${num(a.probabilityBest)}</td><td class="num">${a.rewards}</td></tr>`,
    )
    .join('');
  return `<div class="steering bandit">
<h3>bandit <span class="phase">${esc(b.policy)}</span> <span class="run">run ${esc(b.run)}</span>${b.staleSeconds > 2 ? ` <span class="needs">shares frozen for ${Math.round(b.staleSeconds)} s: the store cannot be reached</span>` : ''}</h3>
<table class="arms"><thead><tr><th>arm</th><th>share</th><th></th><th>reward mean [95%]</th><th>P(best)</th><th>rewards</th></tr></thead><tbody>${rows}</tbody></table>
${sharesChart(b)}
</div>`;
}

export function steeringHtml(s: SteeringJson): string {
  return `${s.rollout ? rolloutHtml(s.rollout) : ''}${s.bandit ? banditHtml(s.bandit) : ''}`;
}
