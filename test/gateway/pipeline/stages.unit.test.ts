/**
 * The request pipeline's stages, each alone and in their order, without sockets: a request with no
 * protocol (recording-request.ts) records what each stage asked of it. What is checked is each
 * stage's own rule, and the one the pipeline exists for: a stage that refuses stops the request,
 * so nothing after it reads, decides or commits anything.
 */
import { describe, expect, it } from 'vitest';
import type { Allow, Deny, Gatekeeper } from '../../../gateway/auth/gate.js';
import { requestPipeline } from '../../../gateway/pipeline/chain.js';
import { CorsStage } from '../../../gateway/pipeline/cors.js';
import { GateStage } from '../../../gateway/pipeline/gate.js';
import { MatchStage } from '../../../gateway/pipeline/match.js';
import { RedirectStage } from '../../../gateway/pipeline/redirect.js';
import type { Stage } from '../../../gateway/pipeline/stage.js';
import { SteerStage } from '../../../gateway/pipeline/steer.js';
import { StickyStage } from '../../../gateway/pipeline/sticky-cookie.js';
import { issueToken } from '../../../gateway/steer/attribution.js';
import { BanditEdge, type FeedbackOutcome, type RewardSink } from '../../../gateway/steer/bandit-edge.js';
import { StickyKeys } from '../../../gateway/steer/sticky-keys.js';
import { randomPicker, seededRandom } from '../../../routing/table/pick.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { buildTable } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type Routed } from '../../../routing/types.js';
import { RecordingRequest, type RecordingOptions } from './recording-request.js';

function sdep(name: string, annotations: Record<string, string>, predictors: { name: string; traffic?: number }[]): SeldonDeployment {
  return {
    apiVersion: 'machinelearning.seldon.io/v1',
    kind: 'SeldonDeployment',
    metadata: { name, namespace: 'models', annotations },
    spec: { predictors: predictors.map((p) => ({ ...p, graph: { name: 'm', implementation: 'SKLEARN_SERVER', modelUri: `gs://m/${p.name}` } })) },
  } as SeldonDeployment;
}

const TABLE = buildTable(
  [
    sdep('iris', {}, [{ name: 'main' }]),
    sdep('limited', { 'seldon.io/gateway-rate-limit': '1/h' }, [{ name: 'main' }]),
    sdep('web', { 'seldon.io/gateway-cors': 'origins: "https://app.example"' }, [{ name: 'main' }]),
    sdep('rec', { 'seldon.io/gateway-bandit': 'arms: [a, b]' }, [{ name: 'a' }, { name: 'b' }]),
    sdep('guarded-rec', { 'seldon.io/gateway-bandit': 'arms: [a, b]', 'seldon.io/gateway-rate-limit': '1/h' }, [{ name: 'a' }, { name: 'b' }]),
    sdep(
      'redir',
      {
        'seldon.io/ambassador-config':
          'apiVersion: getambassador.io/v2\nkind: Mapping\nname: away\nprefix: /seldon/models/redir/away/\nservice: elsewhere.models:8080\nhost_redirect: true\nredirect_response_code: 308',
      },
      [{ name: 'main' }],
    ),
    sdep('sticky', { 'seldon.io/gateway-rollout': 'canary: v2\nsteps: [50]\nsticky: cookie' }, [{ name: 'main' }, { name: 'v2', traffic: 0 }]),
  ],
  DEFAULT_COMPILE_OPTIONS,
);
const STATE = { current: TABLE };
const PICKER = randomPicker(seededRandom(1));
const KEY = Buffer.from('0123456789abcdef0123456789abcdef');
const NOW = 1_767_225_600_000;
const NO_GATE = undefined;
/** A gate object the stages only hand back to the request (`askGate`); its verdicts are the request's. */
const GATE = {} as Gatekeeper;

const path = (deployment: string, rest = 'api/v1.0/predictions'): string => `/seldon/models/${deployment}/${rest}`;

/** The last stage of a unit's chain: records that the request got there. */
const REACHED: Stage = { run: (r) => (r as RecordingRequest).calls.push('next') };

/** The request routed as the match stage would route it. */
function routed(r: RecordingRequest): RecordingRequest {
  r.table = TABLE;
  new MatchStage({ state: STATE, picker: PICKER }, { run: () => undefined }).run(r);
  return r;
}

/** A bandit edge whose rewards are recorded in `rewards`, and its counted outcomes in `counted`. */
function bandits(): { edge: BanditEdge; rewards: unknown[][]; counted: string[] } {
  const rewards: unknown[][] = [];
  const counted: string[] = [];
  const sink: RewardSink = {
    reward: (...args) => {
      rewards.push(args);
      return new Promise(() => undefined);
    },
  };
  const edge = new BanditEdge(
    () => sink,
    (deployment, arm, outcome: FeedbackOutcome | 'dropped') => counted.push(`${deployment} ${arm} ${outcome}`),
    undefined,
    () => NOW,
  );
  edge.setKeys([KEY]);
  return { edge, rewards, counted };
}

const allow = (decision: Routed, strip: readonly string[] = []): Allow => ({ allow: true, decision, strip });
const DENY: Deny = { allow: false, status: 429, reason: 'RATE_LIMITED', message: 'rate limit exceeded' };

describe('match', () => {
  it('routes the request on the live table and hands it on', () => {
    const r = new RecordingRequest(path('iris'));
    new MatchStage({ state: STATE, picker: PICKER }, REACHED).run(r);
    expect(r.routed?.backend.id).toBe('models/iris/main');
    expect(r.table).toBe(TABLE);
    expect(r.calls).toEqual(['next']);
  });

  it('no route: refused as unrouted, nothing after it runs', () => {
    const r = new RecordingRequest('/seldon/models/nobody/api/v1.0/predictions');
    new MatchStage({ state: STATE, picker: PICKER }, REACHED).run(r);
    expect(r.calls).toEqual(['unrouted:404 NO_ROUTE']);
  });

  it("no route, but the OAuth front end's call: handed on unrouted for the gate to route", () => {
    const r = new RecordingRequest('/seldon.protos.Seldon/Predict', { kind: 'grpc', frontEndCall: true });
    new MatchStage({ state: STATE, picker: PICKER, gate: GATE }, REACHED).run(r);
    expect(r.frontEnd).toBe(true);
    expect(r.routed).toBeUndefined();
    expect(r.calls).toEqual(['next']);
  });

  it('the REST front end is not matched at all (the gate routes it by its token)', () => {
    const r = new RecordingRequest('/api/v1.0/predictions', { frontEnd: true });
    new MatchStage({ state: STATE, picker: PICKER }, REACHED).run(r);
    expect(r.routed).toBeUndefined();
    expect(r.calls).toEqual(['next']);
  });
});

describe('sticky', () => {
  it('a REST client placed by a new cookie while matching gets it on its answer; a client with a valid one gets none', () => {
    const keys = new StickyKeys();
    const first = new RecordingRequest(path('sticky'), { sticky: keys });
    new MatchStage({ state: STATE, picker: PICKER }, new StickyStage(REACHED)).run(first);
    expect(first.minted).toBeDefined();
    expect(first.answerHeaders).toEqual(['set-cookie', StickyKeys.setCookie(first.minted!)]);
    const again = new RecordingRequest(path('sticky'), { sticky: keys, headers: { cookie: `seldon-gateway-sticky=${first.minted}` } });
    new MatchStage({ state: STATE, picker: PICKER }, new StickyStage(REACHED)).run(again);
    expect(again.answerHeaders).toBeUndefined();
    // The same place: the same predictor.
    expect(again.routed!.backend).toBe(first.routed!.backend);
  });

  it('gRPC reads its sticky metadata and mints nothing', () => {
    const r = new RecordingRequest('/seldon.protos.Seldon/Predict', { kind: 'grpc', sticky: new StickyKeys(), headers: { seldon: 'sticky', namespace: 'models' } });
    new MatchStage({ state: STATE, picker: PICKER }, new StickyStage(REACHED)).run(r);
    expect(r.minted).toBeUndefined();
    expect(r.answerHeaders).toBeUndefined();
  });
});

describe('CORS', () => {
  it('a route without a policy is not asked; an answered preflight stops the request; any other request goes on', () => {
    const plain = routed(new RecordingRequest(path('iris')));
    new CorsStage(REACHED).run(plain);
    expect(plain.calls).toEqual(['next']);
    const preflight = routed(new RecordingRequest(path('web'), { method: 'OPTIONS', preflight: true }));
    new CorsStage(REACHED).run(preflight);
    expect(preflight.calls).toEqual(['cors:https://app.example']);
    const actual = routed(new RecordingRequest(path('web'), { preflight: false }));
    new CorsStage(REACHED).run(actual);
    expect(actual.calls).toEqual(['cors:https://app.example', 'next']);
  });
});

describe('redirect', () => {
  it('a route without a redirect goes on; a redirect Mapping answers itself and nothing after it runs (the gate is not asked)', () => {
    const plain = routed(new RecordingRequest(path('iris')));
    new RedirectStage(REACHED).run(plain);
    expect(plain.calls).toEqual(['next']);
    const away = new RecordingRequest('/seldon/models/redir/away/x', { verdict: { allow: true } as never });
    requestPipeline({ state: STATE, picker: PICKER, gate: GATE }, REACHED).run(away);
    expect(away.calls).toEqual(['redirected:308 elsewhere.models:8080']);
  });
});

describe('gate', () => {
  it('a route without a gate passes without a verdict', () => {
    const r = routed(new RecordingRequest(path('iris')));
    new GateStage(GATE, REACHED).run(r);
    expect(r.calls).toEqual(['next']);
  });

  it('a gated route in a process without the gate: 503, nothing after it runs', () => {
    const r = routed(new RecordingRequest(path('limited')));
    new GateStage(NO_GATE, REACHED).run(r);
    expect(r.calls).toEqual(['refuse:503 AUTH_BACKEND_UNAVAILABLE']);
  });

  it('denied: the refusal, nothing after it runs', () => {
    const r = routed(new RecordingRequest(path('limited'), { verdict: DENY }));
    new GateStage(GATE, REACHED).run(r);
    expect(r.calls).toEqual(['askGate', 'denied:429 RATE_LIMITED']);
  });

  it("allowed once the stores answer: the gate's decision replaces the match's, the credential goes, then the next stage", async () => {
    const other = routed(new RecordingRequest(path('iris'))).routed!;
    let answer!: (v: Allow) => void;
    const pending = new Promise<Allow>((resolve) => (answer = resolve));
    const held = new RecordingRequest(path('limited'), { verdict: pending });
    routed(held);
    new GateStage(GATE, REACHED).run(held);
    expect(held.calls).toEqual(['askGate']);
    answer(allow(other, ['authorization']));
    await pending;
    await Promise.resolve();
    expect(held.calls).toEqual(['askGate', 'allowed:authorization', 'next']);
    expect(held.routed).toBe(other);
  });

  it('the client left while the gate waited: nothing after it runs', async () => {
    const pending = Promise.resolve(allow(routed(new RecordingRequest(path('limited'))).routed!));
    const r = routed(new RecordingRequest(path('limited'), { verdict: pending }));
    new GateStage(GATE, REACHED).run(r);
    r.left = true;
    await pending;
    await Promise.resolve();
    expect(r.calls).toEqual(['askGate', 'allowed:']);
  });

  it('a throw in the stage after an asynchronous verdict fails that request only', async () => {
    const pending = Promise.resolve(allow(routed(new RecordingRequest(path('limited'))).routed!));
    const r = routed(new RecordingRequest(path('limited'), { verdict: pending }));
    new GateStage(GATE, {
      run: () => {
        throw new Error('boom');
      },
    }).run(r);
    await pending;
    await Promise.resolve();
    expect(r.calls).toEqual(['askGate', 'allowed:', 'failed:boom']);
  });
});

describe('steer', () => {
  it('a deployment no bandit steers passes untouched', () => {
    const { edge } = bandits();
    const r = routed(new RecordingRequest(path('iris')));
    new SteerStage(edge, REACHED).run(r);
    expect(r.token).toBeUndefined();
    expect(r.calls).toEqual(['next']);
  });

  it("a bandit's prediction gets a token for the arm that answers it", () => {
    const { edge } = bandits();
    const r = routed(new RecordingRequest(path('rec')));
    new SteerStage(edge, REACHED).run(r);
    expect(r.token?.split('.')[1]).toBe(r.routed!.backend.origin.predictor);
    expect(r.calls).toEqual(['next']);
  });

  it('a feedback goes to the arm of its token; its reward is decided but recorded only on commit, once', () => {
    const { edge, rewards, counted } = bandits();
    const token = issueToken([KEY], 'b', 'models/rec', NOW);
    const r = routed(new RecordingRequest(path('rec', 'api/v1.0/feedback'), { isFeedback: true, feedback: { token, reward: 1 } }));
    new SteerStage(edge, REACHED).run(r);
    expect(r.routed!.backend.origin.predictor).toBe('b');
    expect(r.calls).toEqual(['readFeedback', 'next']);
    expect(rewards).toEqual([]);
    expect(counted).toEqual([]);
    r.commit();
    r.commit();
    expect(rewards).toHaveLength(1);
    expect(rewards[0]!.slice(0, 4)).toEqual(['models/rec', rewards[0]![1], 'b', 1]);
  });

  it('a feedback without a token is counted unattributed, on commit only', () => {
    const { edge, counted } = bandits();
    const r = routed(new RecordingRequest(path('rec', 'api/v1.0/feedback'), { isFeedback: true, feedback: null }));
    new SteerStage(edge, REACHED).run(r);
    expect(counted).toEqual([]);
    r.commit();
    expect(counted).toEqual(['models/rec  unattributed']);
  });

  it('a forged token is counted forged, on commit only, and the feedback goes where it was drawn', () => {
    const { edge, counted } = bandits();
    const token = issueToken([Buffer.from('another key, another key, anothe')], 'b', 'models/rec', NOW);
    const r = routed(new RecordingRequest(path('rec', 'api/v1.0/feedback'), { isFeedback: true, feedback: { token, reward: 1 } }));
    const drawn = r.routed!.backend;
    new SteerStage(edge, REACHED).run(r);
    expect(r.routed!.backend).toBe(drawn);
    r.commit();
    expect(counted).toEqual(['models/rec  forged']);
  });

  it('a feedback whose body is still being read waits for it', () => {
    const { edge } = bandits();
    const r = routed(new RecordingRequest(path('rec', 'api/v1.0/feedback'), { isFeedback: true, later: true, feedback: null }));
    new SteerStage(edge, REACHED).run(r);
    expect(r.calls).toEqual(['readFeedback']);
    r.feedbackRead();
    expect(r.calls).toEqual(['readFeedback', 'next']);
  });
});

describe('the pipeline, in order', () => {
  const pipeline = (edge: BanditEdge, gate: Gatekeeper | undefined): Stage => requestPipeline({ state: STATE, picker: PICKER, gate, bandits: edge });
  const token = issueToken([KEY], 'a', 'models/guarded-rec', NOW);
  const feedback = (o: Pick<RecordingOptions, 'verdict'> = {}): RecordingRequest =>
    new RecordingRequest(path('guarded-rec', 'api/v1.0/feedback'), { isFeedback: true, feedback: { token, reward: 1 }, ...o });

  it('a feedback the gate refuses is never read for its token, and nothing is credited or counted', () => {
    const { edge, rewards, counted } = bandits();
    const r = feedback({ verdict: DENY });
    pipeline(edge, GATE).run(r);
    expect(r.calls).toEqual(['askGate', 'denied:429 RATE_LIMITED']);
    expect(r.credit).toBeUndefined();
    expect(rewards).toEqual([]);
    expect(counted).toEqual([]);
  });

  it('the same feedback allowed: gate, then steering, then forward to the arm of its token; the credit waits for the exchange', async () => {
    const { edge, rewards } = bandits();
    // The gate allows it as matched (a rate limit keeps the decision), once its store has answered.
    let verdict: Promise<Allow> | undefined;
    const r = feedback({ verdict: (q) => (verdict = Promise.resolve(allow(q.routed!))) });
    pipeline(edge, GATE).run(r);
    await verdict;
    await Promise.resolve();
    expect(r.calls).toEqual(['askGate', 'allowed:', 'readFeedback', 'forward:models/guarded-rec/a']);
    expect(rewards).toEqual([]);
    r.commit();
    expect(rewards).toHaveLength(1);
  });

  it('a stage that holds something for a forwarded request is told once when it is over', () => {
    const r = new RecordingRequest(path('iris'));
    const released: boolean[] = [];
    r.onEnded((answered) => released.push(answered));
    r.ended(true);
    r.ended(false);
    expect(released).toEqual([true]);
  });

  it('a plain route runs straight through to forward, synchronously', () => {
    const { edge } = bandits();
    const r = new RecordingRequest(path('iris'));
    pipeline(edge, GATE).run(r);
    expect(r.calls).toEqual(['forward:models/iris/main']);
  });
});
