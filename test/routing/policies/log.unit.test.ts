/**
 * `seldon.io/gateway-log` compiled (routing/policies/log.ts): what an annotation may say, what it may
 * never say (where events go: no tenant names a URL), the defaults, a predictor's own annotation
 * over the deployment's, and what a bad value does to the deployment (degraded, nothing logged).
 */
import { describe, expect, it } from 'vitest';
import { parseLogFields, LOG_ANNOTATION } from '../../../routing/policies/log.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend, type CompileOptions } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';

const KNOWN = new Set(['audit', 'drift']);
const opts: CompileOptions = { ...DEFAULT_COMPILE_OPTIONS, logSinks: KNOWN };

const error = (raw: string, known: ReadonlySet<string> | undefined = KNOWN): string => {
  const p = parseLogFields(raw, known);
  if (p.ok) throw new Error('accepted');
  return p.error;
};

function sdep(annotation: string | undefined, predictors: { name: string; own?: string; graph?: string; shadow?: boolean }[], protocol?: string): SeldonDeployment {
  return {
    metadata: { name: 'iris', namespace: 'ns', ...(annotation !== undefined ? { annotations: { [LOG_ANNOTATION]: annotation } } : {}) },
    spec: {
      ...(protocol ? { protocol } : {}),
      predictors: predictors.map((p, i) => ({
        name: p.name,
        traffic: i === 0 ? 100 : 0,
        ...(p.shadow ? { shadow: true } : {}),
        graph: { name: p.graph ?? 'classifier' },
        ...(p.own !== undefined ? { annotations: { [LOG_ANNOTATION]: p.own } } : {}),
      })),
    },
  };
}

function backends(d: SeldonDeployment, o: CompileOptions = opts): { state: string; reasons: readonly string[]; byPredictor: Map<string, Backend> } {
  const t = buildTable([d], o);
  const r = t.deployments.get('ns/iris')!;
  const byPredictor = new Map<string, Backend>();
  for (const g of t.groups) for (const m of [...g.members, ...g.mirrors]) if (g.kind === 'rest') byPredictor.set(m.backend.origin.predictor, m.backend);
  return { state: r.state, reasons: r.reasons, byPredictor };
}

describe('seldon.io/gateway-log', () => {
  it('the defaults: everything (request, response, decisions), every request, bodies up to 1 MiB', () => {
    const { state, byPredictor } = backends(sdep('sinks: [audit]', [{ name: 'main' }]));
    expect(state).toBe('accepted');
    expect(byPredictor.get('main')!.log).toEqual({
      sinks: ['audit'],
      request: true,
      response: true,
      decisions: true,
      sample: 1,
      sampleKey: null,
      maxBodyBytes: 1024 * 1024,
      modelId: 'classifier',
      protocol: 'seldon',
    });
  });

  it('every field, in YAML or JSON; `decisions` logs the decision alone, `all` includes it', () => {
    const y = parseLogFields('sinks: [audit, drift]\nlog: decisions\nsample: 0.1\nsampleKey: header:X-User\nmaxBodyBytes: 64Ki', KNOWN);
    expect(y).toEqual({ ok: true, value: { sinks: ['audit', 'drift'], log: 'decisions', sample: 0.1, sampleKey: { kind: 'header', name: 'x-user' }, maxBodyBytes: 65536 } });
    const j = parseLogFields('{"sinks":"audit","log":"request","sampleKey":"claim:sub","maxBodyBytes":100}', KNOWN);
    expect(j).toEqual({ ok: true, value: { sinks: ['audit'], log: 'request', sampleKey: { kind: 'claim', name: 'sub' }, maxBodyBytes: 100 } });
    const only = backends(sdep('sinks: [audit]\nlog: decisions', [{ name: 'main' }])).byPredictor.get('main')!.log!;
    expect([only.request, only.response, only.decisions]).toEqual([false, false, true]);
  });

  it('a tenant can never say where events go: a URL, a stream, a file path, a type are refused by name', () => {
    for (const field of ['url: http://evil.example/collect', 'stream: other-tenant-stream', 'path: /etc/passwd', 'type: cloudevents', 'endpoint: http://x']) {
      expect(error(`sinks: [audit]\n${field}`)).toMatch(/where events go is the operator's to say \(--log-sinks\); an annotation names sinks only/);
    }
    // A URL given as a sink name is a name the operator did not configure.
    expect(error('sinks: ["http://evil.example/collect"]')).toContain('"http://evil.example/collect" is not a sink of this gateway (configured: audit, drift)');
  });

  it('a sink the operator did not name degrades the deployment, and nothing of it is logged', () => {
    const { state, reasons, byPredictor } = backends(sdep('sinks: [elsewhere]', [{ name: 'main' }]));
    expect(state).toBe('degraded');
    expect(reasons.join('\n')).toContain('seldon.io/gateway-log: sinks: "elsewhere" is not a sink of this gateway (configured: audit, drift): nothing is logged');
    expect(byPredictor.get('main')!.log).toBeNull();
    // No sinks configured at all (--log-sinks not given): every name is unknown.
    const none = backends(sdep('sinks: [audit]', [{ name: 'main' }]), DEFAULT_COMPILE_OPTIONS);
    expect(none.reasons.join('\n')).toContain('none is configured (--log-sinks)');
    expect(none.byPredictor.get('main')!.log).toBeNull();
  });

  it('bad values are refused with what is wrong, and degrade the deployment', () => {
    expect(error('sinks: [audit]\nlog: everything')).toContain('log: "everything" is not one of request, response, all, decisions');
    expect(error('sinks: [audit]\nsample: 1.5')).toContain('sample: 1.5 is not a number from 0 to 1');
    expect(error('sinks: [audit]\nsampleKey: cookie:x')).toContain('is not header:<name> or claim:<name>');
    expect(error('sinks: [audit]\nmaxBodyBytes: 1Gi')).toContain('maxBodyBytes');
    expect(error('sinks: [audit]\nsinkz: [x]')).toContain('unknown field "sinkz"');
    const noSinks = backends(sdep('log: all', [{ name: 'main' }, { name: 'canary' }]));
    expect(noSinks.state).toBe('degraded');
    expect(noSinks.reasons.filter((r) => r.includes('name at least one sink'))).toHaveLength(1);
  });

  it("a predictor's own annotation overrides the deployment's field by field; off turns it off there; shadows are never logged", () => {
    const d = sdep(
      'sinks: [audit]\nsample: 0.5',
      [{ name: 'main' }, { name: 'canary', own: 'log: decisions', graph: 'canary-model' }, { name: 'quiet', own: 'off' }, { name: 'copy', shadow: true }],
      'v2',
    );
    const { state, byPredictor } = backends(d);
    expect(state).toBe('accepted');
    expect(byPredictor.get('main')!.log).toMatchObject({ sinks: ['audit'], sample: 0.5, decisions: true, request: true, protocol: 'v2' });
    expect(byPredictor.get('canary')!.log).toMatchObject({ sinks: ['audit'], sample: 0.5, decisions: true, request: false, response: false, modelId: 'canary-model' });
    expect(byPredictor.get('quiet')!.log).toBeNull();
    expect(byPredictor.get('copy')!.log).toBeNull();
    // A predictor may log where the deployment does not.
    const own = backends(sdep(undefined, [{ name: 'main' }, { name: 'canary', own: 'sinks: [drift]' }]));
    expect(own.byPredictor.get('main')!.log).toBeNull();
    expect(own.byPredictor.get('canary')!.log!.sinks).toEqual(['drift']);
  });

  it('/routes shows each logged predictor’s policy', async () => {
    const { tableJson } = await import('../../../routing/table/describe.js');
    const t = buildTable([sdep('sinks: [audit]\nsampleKey: claim:sub', [{ name: 'main' }])], opts);
    const member = tableJson(t).deployments[0]!.routes.find((r) => r.kind === 'rest')!.members[0]!;
    expect(member.log).toEqual({ sinks: ['audit'], request: true, response: true, decisions: true, sample: 1, sampleKey: 'claim:sub', maxBodyBytes: 1048576 });
  });
});
