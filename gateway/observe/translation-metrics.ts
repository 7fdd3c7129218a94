/**
 * `seldon_gateway_protocol_translations_total{namespace,deployment,from,to,result}`
 * (docs/protocol-translation.md): requests translated between Seldon's protocol and v2, by what came
 * of it: `ok` (answered and translated back), `model-error` (the model's error, translated),
 * `refused` (the request could not be carried unchanged: 400, no upstream call), `bad-answer` (the
 * model's answer could not be translated: 502). Counted only on translated routes; its series go
 * with their deployment (observe/series-reaper.ts).
 */
import type { Registry } from 'prom-client';
import type { Backend } from '../../routing/types.js';
import { BoundCounter } from './bound-series.js';

export type TranslationResult = 'ok' | 'model-error' | 'refused' | 'bad-answer';

export class TranslationMetrics {
  /** Bound series (observe/bound-series.ts): counted on the request path. */
  private readonly translations: BoundCounter;

  constructor(registry: Registry) {
    this.translations = new BoundCounter(
      'seldon_gateway_protocol_translations_total',
      "Requests translated between Seldon's protocol and the Open Inference Protocol (seldon.io/gateway-protocol), by deployment, client protocol (from), model protocol (to) and result: ok, model-error, refused (400, not sent), bad-answer (502).",
      ['namespace', 'deployment', 'from', 'to', 'result'],
      registry,
    );
  }

  count(backend: Backend, from: string, to: string, result: TranslationResult): void {
    const o = backend.origin;
    this.translations.series(o.namespace, o.deployment, from, to, result).inc();
  }
}
