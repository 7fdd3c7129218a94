/**
 * The admin page's line for the JWT providers' key sets: how many keys, how old, and the last
 * fetch's failure, marked bad when a fetch failed or nothing is held. Rendered from the view model.
 */
import { describe, expect, it } from 'vitest';
import { renderPage } from '../../../gateway/admin/page.js';
import type { DiagnosticsJson, PageSettings } from '../../../gateway/admin/page-model.js';

const NOW = Date.parse('2026-11-25T10:00:00.000Z');

function page(settings: Partial<PageSettings>): string {
  const d: DiagnosticsJson = {
    generation: 1,
    appliedAt: new Date(NOW).toISOString(),
    ambassadorId: 'default',
    singleNamespace: false,
    window: { seconds: 300, from: new Date(NOW - 300_000).toISOString(), to: new Date(NOW).toISOString() },
    counts: { accepted: 0, degraded: 0, rejected: 0, skipped: 0 },
    sourceProblems: {},
    settings: { predictorHeader: false, shadowCompare: false, accessLogSample: 0, workers: 1, ...settings },
    deployments: [],
    disagreements: [],
  };
  return renderPage(d);
}

describe('the JWT key sets on the admin page', () => {
  it('each provider: its keys and their age; a failed fetch is shown with its reason and marked bad, as is a provider with no keys', () => {
    const html = page({
      jwtKeys: [
        { provider: 'corp', keys: 2, fetchedAt: NOW - 42_000, lastError: null, fetches: 3 },
        { provider: 'dex', keys: 1, fetchedAt: NOW - 600_000, lastError: 'https://dex.example/keys answered 503', fetches: 9 },
        { provider: 'air<gap>', keys: 0, fetchedAt: null, lastError: null, fetches: 1 },
      ],
    });
    expect(html).toContain('<span class="jwt-provider" data-provider="corp">JWT <b>corp</b>: 2 keys, fetched 42 s ago</span>');
    expect(html).toContain('<span class="jwt-provider bad" data-provider="dex">JWT <b>dex</b>: 1 key, fetched 10 min ago; last fetch failed: https://dex.example/keys answered 503</span>');
    expect(html).toContain('<span class="jwt-provider bad" data-provider="air&lt;gap&gt;">JWT <b>air&lt;gap&gt;</b>: 0 keys, never fetched</span>');
  });

  it('without --jwt-providers there is no such line', () => {
    expect(page({})).not.toContain('jwt-providers');
  });
});
