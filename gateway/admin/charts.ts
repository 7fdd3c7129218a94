/**
 * The admin page's small pictures, as inline SVG and plain HTML (no script, nothing fetched): a
 * request-rate chart, an error-rate chart (5xx red over 4xx amber), a configured-against-observed
 * share bar and an agreement gauge. Pure: numbers in, markup out.
 */
import type { TimelinePoint } from '../observe/observed.js';

export const RED = '#c62828';
export const AMBER = '#d49b00';
export const GREEN = '#3b9a57';
const BLUE = '#3f6fb5';

const W = 140;
const H = 30;
const fmt = (n: number): string => String(Number(n.toPrecision(3)));

/** Bars of `values` (each a stack of [value, colour] from the bottom) scaled to the largest total. */
function bars(kind: string, title: string, steps: readonly (readonly [number, string][])[]): string {
  const max = Math.max(0, ...steps.map((s) => s.reduce((a, [v]) => a + v, 0)));
  const n = Math.max(steps.length, 1);
  const w = W / n;
  const rects: string[] = [];
  steps.forEach((stack, i) => {
    let y = H;
    for (const [v, colour] of stack) {
      if (v <= 0 || max <= 0) continue;
      const h = Math.max(1, (v / max) * (H - 2));
      y -= h;
      rects.push(`<rect x="${(i * w + 0.5).toFixed(1)}" y="${y.toFixed(1)}" width="${Math.max(w - 1, 0.5).toFixed(1)}" height="${h.toFixed(1)}" fill="${colour}"/>`);
    }
  });
  return `<svg class="chart ${kind}" data-max="${fmt(max)}" data-points="${steps.length}" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" role="img"><title>${title}</title><line x1="0" y1="${H - 0.5}" x2="${W}" y2="${H - 0.5}" stroke="#d5d9e0"/>${rects.join('')}</svg>`;
}

/** Requests per second, one bar per step of the window. */
export function rateChart(line: readonly TimelinePoint[]): string {
  const rates = line.map((p) => (p.seconds > 0 ? p.total / p.seconds : 0));
  const max = Math.max(0, ...rates);
  return bars(
    'rate-chart',
    `requests/s, up to ${fmt(max)}`,
    rates.map((r) => [[r, BLUE]] as const),
  );
}

/** Errors per second, one bar per step: 5xx (red) under 4xx (amber). */
export function errorChart(line: readonly TimelinePoint[]): string {
  const per = (n: number, p: TimelinePoint): number => (p.seconds > 0 ? n / p.seconds : 0);
  const max = Math.max(0, ...line.map((p) => per(p.c4xx + p.c5xx, p)));
  return bars(
    'error-chart',
    `errors/s (5xx red, 4xx amber), up to ${fmt(max)}`,
    line.map(
      (p) =>
        [
          [per(p.c5xx, p), RED],
          [per(p.c4xx, p), AMBER],
        ] as const,
    ),
  );
}

/** A predictor's configured weight (grey, top) above its observed share (blue, or red when it drifts). */
export function shareBar(configured: number, observed: number | null, drifting: boolean): string {
  const clamp = (n: number): number => Math.max(0, Math.min(100, n));
  const obs = observed === null ? '' : `<i class="observed-share" style="width:${clamp(observed)}%;background:${drifting ? RED : BLUE}"></i>`;
  return `<span class="share" title="configured ${configured}%, observed ${observed === null ? 'nothing' : `${observed}%`}"><b class="configured-share" style="width:${clamp(configured)}%"></b>${obs}</span>`;
}

/** The colour of an agreement: green from 99%, amber from 95%, red below. */
export function agreementColour(percent: number): string {
  return percent >= 99 ? GREEN : percent >= 95 ? AMBER : RED;
}

/** A half-circle gauge of a shadow's agreement with the primary, in percent; grey and empty when nothing was compared. */
export function agreementGauge(percent: number | null): string {
  const r = 26;
  const cx = 32;
  const cy = 30;
  const arc = (to: number, colour: string, cls: string): string => {
    const a = Math.PI * (1 - to / 100);
    const x = cx + r * Math.cos(a);
    const y = cy - r * Math.sin(a);
    return `<path class="${cls}" d="M ${cx - r} ${cy} A ${r} ${r} 0 0 1 ${x.toFixed(2)} ${y.toFixed(2)}" fill="none" stroke="${colour}" stroke-width="6"/>`;
  };
  const value = percent === null ? null : Math.max(0, Math.min(100, percent));
  const colour = value === null ? '#9aa3ad' : agreementColour(value);
  return `<svg class="gauge" data-value="${value ?? ''}" width="64" height="36" viewBox="0 0 64 36" role="img"><title>agreement ${value === null ? 'not measured' : `${value}%`}</title>${arc(100, '#eceff1', 'track')}${value === null || value === 0 ? '' : arc(value, colour, 'needle')}<text x="${cx}" y="${cy}" text-anchor="middle" font-size="12" font-weight="700" fill="${colour}">${value === null ? '–' : `${value}%`}</text></svg>`;
}
