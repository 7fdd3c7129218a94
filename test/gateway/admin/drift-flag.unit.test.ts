/**
 * The admin page's drift flag (an observed share more than 10 points from its weight, over 100
 * requests or more): kept where the weights held over the whole window, and replaced by a note
 * where a rollout changed them within it (the window then mixes traffic from before and after).
 */
import { describe, expect, it } from 'vitest';
import { diagnostics } from '../../../gateway/admin/page-model.js';
import { renderPage } from '../../../gateway/admin/page.js';
import type { SteeringJson } from '../../../gateway/admin/steering-html.js';
import { ObservedWindow } from '../../../gateway/observe/observed.js';
import { buildTable } from '../../../routing/table/builder.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';

const FROM = Date.parse('2026-01-01T12:00:00Z');
const sdep = (name: string): SeldonDeployment => ({
  apiVersion: 'machinelearning.seldon.io/v1',
  kind: 'SeldonDeployment',
  metadata: { name, namespace: 'm' },
  spec: { predictors: [{ name: 'main' }, { name: 'v2', traffic: 20 }] },
});
const SETTINGS = { predictorHeader: false, shadowCompare: false, accessLogSample: 0, workers: 1 };

/** 500 REST requests to each deployment over the window (none over gRPC): main 250, v2 250 (50%, where the weights say 80/20). */
function window(): ObservedWindow {
  const counts = new Map<string, number>();
  for (const d of ['held', 'rolled']) for (const p of ['main', 'v2']) counts.set(['r', 'm', d, p, 'rest', 'primary', '200'].join('\u0000'), 250);
  return new ObservedWindow(300, new Date(FROM), new Date(FROM + 300_000), counts);
}

function rollout(at: number): SteeringJson {
  return {
    rollout: {
      canary: 'v2',
      run: 'r1',
      phase: 'Progressing',
      step: 0,
      steps: [20, 100],
      weight: 20,
      mirror: 0,
      leader: true,
      storeUnreachable: false,
      needs: [],
      warnings: [],
      checks: null,
      transitions: [{ at, kind: 'RolloutStarted', from: 'Progressing', to: 'Progressing', step: 0, weight: 20, reason: 'started' }],
    },
  } as unknown as SteeringJson;
}

describe('the drift flag on the admin page', () => {
  const render = (changedAt: number): string =>
    renderPage(
      diagnostics({
        table: buildTable([sdep('held'), sdep('rolled')], DEFAULT_COMPILE_OPTIONS),
        appliedAt: new Date(FROM),
        problems: new Map(),
        window: window(),
        disagreements: [],
        settings: SETTINGS,
        steering: new Map([['m/rolled', rollout(changedAt)]]),
      }),
    );
  const rows = (html: string, deployment: string): string[] => {
    const section = html.slice(html.indexOf(`data-deployment="m/${deployment}"`));
    return [...section.slice(0, section.indexOf('</section>')).matchAll(/<tr class="member[^"]*"/g)].map((m) => m[0]);
  };

  it('flags a share far from weights that held over the window', () => {
    const html = render(FROM + 60_000);
    expect(rows(html, 'held').filter((r) => r.includes(' drift')).length).toBe(2);
  });

  it('does not flag, and says why, when a rollout changed the weights within the window', () => {
    const html = render(FROM + 60_000);
    expect(rows(html, 'rolled').filter((r) => r.includes(' drift'))).toEqual([]);
    expect(html).toContain('Observed shares are not held against the weights: the rollout changed the weights (RolloutStarted) at <time>12:01:00</time>, within the window');
  });

  it('flags again once the change is older than the window', () => {
    const html = render(FROM - 1000);
    expect(rows(html, 'rolled').filter((r) => r.includes(' drift')).length).toBe(2);
    expect(html).not.toContain('class="weights-moved"');
  });
});
