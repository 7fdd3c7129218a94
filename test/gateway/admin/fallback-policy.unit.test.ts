/**
 * The admin page says where a predictor with `seldon.io/gateway-fallback` sends what it cannot answer
 * (docs/routing.md#fallback-models), beside its retries; a predictor without one says nothing of it.
 */
import { describe, expect, it } from 'vitest';
import { diagnostics } from '../../../gateway/admin/page-model.js';
import { renderPage } from '../../../gateway/admin/page.js';
import { ObservedWindow } from '../../../gateway/observe/observed.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS } from '../../../routing/types.js';

const FROM = Date.parse('2026-01-01T12:00:00Z');

describe('the admin page and a fallback', () => {
  it("shows the predictor's fallback and its reasons", () => {
    const table = buildTable(
      [
        {
          metadata: { name: 'llm', namespace: 'm', annotations: { 'seldon.io/gateway-fallback': 'to: {predictor: small}\non: overload, error' } },
          spec: { predictors: [{ name: 'gpu' }, { name: 'small', traffic: 0 }] },
        },
      ],
      DEFAULT_COMPILE_OPTIONS,
    );
    const html = renderPage(
      diagnostics({
        table,
        appliedAt: new Date(FROM),
        problems: new Map(),
        window: new ObservedWindow(300, new Date(FROM), new Date(FROM + 300_000), new Map()),
        disagreements: [],
        settings: { predictorHeader: false, shadowCompare: false, accessLogSample: 0, workers: 1 },
        steering: new Map(),
      }),
    );
    expect(html.match(/<span class="fallback">[^<]*<\/span>/g)).toEqual([
      '<span class="fallback">falls back to predictor/small on overload, error</span>',
      '<span class="fallback">falls back to predictor/small on overload, error</span>',
    ]);
  });
});
