/**
 * The decision record as written (gateway/payload-log/decision.ts `decisionJson`) is the document
 * `decisionRecord` describes, byte for byte: the same keys in the same order, the same escapes.
 */
import { describe, expect, it } from 'vitest';
import { decisionJson, decisionRecord, type Outcome } from '../../../gateway/payload-log/decision.js';
import type { LogSubject } from '../../../gateway/observe/payload-tap.js';
import type { Routed } from '../../../routing/types.js';

const backend = (predictor: string, steered = false): Routed['backend'] =>
  ({ id: `ml/iris/${predictor}`, origin: { namespace: 'ml', deployment: 'iris', predictor }, steered }) as unknown as Routed['backend'];
const a = backend('a');
const b = backend('b');
const group = (headers: unknown[], steered = false, members = [a, b]): Routed['group'] =>
  ({
    members: members.map((m, i) => ({ backend: m, percent: i === 0 ? 70 : 30 })),
    headers,
    sticky: steered ? { kind: 'header', name: 'x-user' } : null,
    steered,
    mirrors: [],
  }) as unknown as Routed['group'];
const routed = (g: Routed['group'], to: Routed['backend'], mirrors: Routed['backend'][] = []): Routed =>
  ({ ok: true, group: g, backend: to, upstreamPath: '/api/v1.0/predictions', mirrors: mirrors.map((m) => ({ backend: m, percent: 100 })) }) as unknown as Routed;
const outcome = (o: Partial<Outcome> = {}): Outcome => ({
  status: 200,
  grpcStatus: undefined,
  latencyMs: 1.23456,
  upstreamMs: 0.98765,
  attempts: [{ endpoint: '10.0.0.7:9000', status: 200 }],
  shadowsSent: [],
  ...o,
});
const subject = (headers: Record<string, string> = {}, extra: Partial<LogSubject> = {}): LogSubject => ({ method: 'POST', path: '/p', header: (n) => headers[n], since: 0, ...extra });

describe('decisionJson', () => {
  const sa = backend('sa', true);
  const sb = backend('sb', true);
  const steeredGroup = group([], true, [sa, sb]);
  const table = {
    steering: new Map([['ml/iris', { rollout: { run: 'r1', config: { canary: 'sb', steps: [10, 30, 100] } }, bandit: { run: 'b1' } }]]),
  } as unknown as LogSubject['table'];
  const cases: [string, Routed, LogSubject, Outcome, LogSubject['credit']][] = [
    ['a plain request', routed(group([{ kind: 'exact', name: 'x-tenant', value: 'acme "q"' }]), a), subject(), outcome(), undefined],
    [
      'shadows, a failed attempt, a retry',
      routed(group([]), b, [a]),
      subject(),
      outcome({
        shadowsSent: ['a'],
        attempts: [
          { endpoint: 'h:1', failure: 'ECONNRESET' },
          { endpoint: 'h:2', status: 503 },
        ],
      }),
      undefined,
    ],
    [
      'refused, gRPC, no upstream',
      routed(group([{ kind: 'presence', name: 'x-k' }]), a),
      subject(),
      outcome({ status: 200, grpcStatus: 16, upstreamMs: null, attempts: [], refused: { check: 'jwt', reason: 'bad', message: 'a "sig"\n\u2028é' } }),
      undefined,
    ],
    ['a feedback credited by its token', routed(group([]), a), subject(), outcome(), { arm: 'a', reward: [0, 1.5] }],
    ['a feedback not credited', routed(group([]), b), subject(), outcome(), { arm: '', outcome: 'unattributed' }],
    ['steered: rollout, bandit, sticky', routed(steeredGroup, sb), subject({ 'x-user': 'u1' }, { table }), outcome(), undefined],
    ['answered by the fallback: why, and who fell back', routed(group([]), b), subject({}, { fellBack: { reason: 'overload', from: a } }), outcome(), undefined],
  ];
  for (const [name, r, s, o, credit] of cases) {
    it(name, () => {
      const path = '/seldon/ml/iris/api/v1.0/predictions"\u2028';
      expect(decisionJson('rest', 'POST', path, r, s, o, credit)).toBe(JSON.stringify(decisionRecord('rest', 'POST', path, r, s, o, credit)));
      // Again: what was written once for the group is the same the second time.
      expect(decisionJson('grpc', 'POST', path, r, s, o, credit)).toBe(JSON.stringify(decisionRecord('grpc', 'POST', path, r, s, o, credit)));
    });
  }

  it("a fallback's answer says why and who fell back; no other record has the key", () => {
    const fell = JSON.parse(decisionJson('rest', 'POST', '/p', routed(group([]), b), subject({}, { fellBack: { reason: 'cold', from: a } }), outcome(), undefined)) as Record<string, unknown>;
    expect(fell['predictor']).toBe('b');
    expect(fell['fallback']).toEqual({ reason: 'cold', from: 'ml/iris/a' });
    expect(JSON.parse(decisionJson('rest', 'POST', '/p', routed(group([]), a), subject(), outcome(), undefined))).not.toHaveProperty('fallback');
  });
});
