/**
 * The quick start is a test: run what `npm start` runs (the built
 * `dist/examples/quickstart.js`, on OS-chosen ports), parse every curl line it prints, send each
 * as curl would, and expect 200 from the model the comment above it names (the mock model says
 * who it is in `x-seldon-model`); the OAuth pair, which uses the shell, is run by bash as printed.
 * The terminal keeps the reader's requests in its access log and sums up the demo's own traffic. The shadow example must also reach the shadow model (the
 * gateway's metrics count its 200), and, in-process over the same manifests with recording
 * upstreams in place of churn's two models, the shadow's copy must carry the same body as the
 * primary's.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRaw, headerValue, readHttpResponse, sha256, startRecordingUpstream, writeRequest, type HeaderLine, type RawResponse, type RecordingUpstream } from '../fixtures/recording-upstream.js';
import { startTestGateway, type TestGateway } from '../helpers/gateway.js';
import { sleep } from '../helpers/wait.js';
import { startQuickstart, type Quickstart } from '../helpers/quickstart.js';
import { readdirSync, readFileSync } from 'node:fs';

const root = fileURLToPath(new URL('../..', import.meta.url));

interface Curl {
  comment: string;
  line: string;
  method: string;
  url: URL;
  headers: HeaderLine[];
  data: string | undefined;
  grep: string | undefined;
}

/** Split a shell line into words (single and double quotes, no expansions: the printed lines use none). */
function words(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      const end = line.indexOf('"', i + 1);
      cur += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === ' ') {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (inWord) out.push(cur);
  return out;
}

/** The curl lines of the quick start's banner, each with the comment above it. */
function parseCurls(banner: string): Curl[] {
  const out: Curl[] = [];
  let comment = '';
  for (const raw of banner.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#')) comment = line.slice(1).trim();
    // Lines that use the shell (the OAuth pair's $TOKEN) are run by bash instead (below).
    if (!line.startsWith('curl ') || line.includes('$')) continue;
    const [cmd, grep] = line.split('|').map((s) => s.trim());
    const w = words(cmd!);
    const headers: HeaderLine[] = [];
    let data: string | undefined;
    let url: URL | undefined;
    let method: string | undefined;
    for (let i = 1; i < w.length; i++) {
      const a = w[i]!;
      if (a === '-s' || a === '-i' || a === '-v') continue;
      if (a === '-H') {
        const h = w[++i]!;
        const colon = h.indexOf(':');
        headers.push([h.slice(0, colon).trim(), h.slice(colon + 1).trim()]);
      } else if (a === '-d' || a === '--data') data = w[++i];
      else if (a === '-X') method = w[++i];
      else if (/^https?:\/\//.test(a)) url = new URL(a);
      else throw new Error(`quick start curl line: unknown argument ${a} in ${line}`);
    }
    if (!url) throw new Error(`quick start curl line without a URL: ${line}`);
    out.push({ comment, line, method: method ?? (data !== undefined ? 'POST' : 'GET'), url, headers, data, grep: grep ? words(grep).slice(1).join(' ') : undefined });
  }
  return out;
}

/** Send as curl does: Host as in the URL, its User-Agent and Accept, the -H headers, -d with a Content-Length. */
async function sendCurl(c: Curl, port: number): Promise<RawResponse | null> {
  const x = await connectRaw(port);
  try {
    const body = c.data === undefined ? undefined : Buffer.from(c.data);
    const headers: HeaderLine[] = [['Host', c.url.host], ['User-Agent', 'curl/8.5.0'], ['Accept', '*/*'], ...c.headers];
    if (body && !c.headers.some(([k]) => k.toLowerCase() === 'content-type')) headers.push(['Content-Type', 'application/x-www-form-urlencoded']);
    await writeRequest(x, { method: c.method, target: c.url.pathname + c.url.search, headers, ...(body ? { body, framing: 'cl' as const } : { framing: 'none' as const }) });
    return await readHttpResponse(x.reader, { method: c.method, timeoutMs: 10_000 });
  } finally {
    x.socket.destroy();
  }
}

/** The model (x-seldon-model) each example must be answered by, from the comment above its line. */
function expectedModel(c: Curl): RegExp | undefined {
  const p = c.url.pathname;
  if (p.startsWith('/seldon/seldon/iris-explainer/')) return /^seldon\/iris\/default#explainer$/;
  if (p.startsWith('/seldon/seldon/iris/')) return /^seldon\/iris\/default$/;
  if (p.startsWith('/seldon/seldon/income/')) return /^seldon\/income\/(main|canary)$/;
  if (p.startsWith('/seldon/seldon/churn/')) return /^seldon\/churn\/main$/;
  if (p.startsWith('/seldon/seldon/reviews/')) return /^seldon\/reviews\/(main|v2)$/;
  if (p.startsWith('/seldon/seldon/recommender/')) return /^seldon\/recommender\/(a|b|c)$/;
  if (p.startsWith('/seldon/seldon/wine/')) return /^seldon\/wine\/(main|mlserver)$/;
  if (p.startsWith('/seldon/seldon/fraud/')) return c.headers.some(([k, v]) => k.toLowerCase() === 'x-region' && v === 'eu') ? /^seldon\/fraud-eu\/main$/ : /^seldon\/fraud\/main$/;
  return undefined;
}

describe('the quick start (npm start): every curl line it prints answers 200 from the expected model', () => {
  let qs: Quickstart;
  let banner = '';
  let curls: Curl[] = [];

  beforeAll(async () => {
    qs = await startQuickstart();
    banner = qs
      .output()
      .split('\n')
      .filter((l) => !l.startsWith('{'))
      .join('\n');
    curls = parseCurls(banner);
  }, 30_000);
  afterAll(() => qs?.stop());

  it('prints the curl lines once the gateway is ready: the nine model examples and the two admin lines', () => {
    expect(banner).toMatch(/seldon-gateway is ready on http:\/\/localhost:\d+/);
    expect(curls.filter((c) => c.url.pathname.startsWith('/seldon/')).length, banner).toBe(9);
    expect(curls.filter((c) => !c.url.pathname.startsWith('/seldon/')).map((c) => c.url.pathname)).toEqual(['/routes', '/metrics']);
    for (const c of curls) if (c.url.pathname.startsWith('/seldon/')) expect(expectedModel(c), c.line).toBeDefined();
  });

  it('each model example answers 200 from its model, five times in a row (fresh connections, as curl makes)', async () => {
    const seen: string[] = [];
    for (const c of curls.filter((x) => x.url.pathname.startsWith('/seldon/'))) {
      for (let i = 0; i < 5; i++) {
        const res = await sendCurl(c, Number(c.url.port));
        const model = headerValue(res?.headers ?? [], 'x-seldon-model') ?? '';
        seen.push(`${c.comment}: ${res?.status} ${model} ${res?.status === 200 ? '' : res?.body.toString()}`);
        expect(res?.status, `${c.comment}\n${c.line}\n${res?.body.toString()}`).toBe(200);
        expect(model, c.comment).toMatch(expectedModel(c)!);
        expect(() => JSON.parse(res!.body.toString()) as unknown, 'a JSON answer').not.toThrow();
      }
    }
    expect(seen.length).toBe(45);
  });

  it("the translation example: each client gets its own protocol's answer from both models, translated exactly when the model speaks the other", async () => {
    const [seldon, v2] = ['/seldon/seldon/wine/api/', '/seldon/seldon/wine/v2/'].map((p) => curls.find((c) => c.url.pathname.startsWith(p))!);
    const answers = new Map<string, { translated: string | undefined; body: unknown }>();
    // 50/50: until each client has met both models (200 sends without one is a chance of 2^-199).
    for (let i = 0; i < 200 && answers.size < 4; i++) {
      for (const [client, c] of [['seldon', seldon!] as const, ['v2', v2!] as const]) {
        const res = await sendCurl(c, Number(c.url.port));
        expect(res?.status, res?.body.toString()).toBe(200);
        const model = headerValue(res!.headers, 'x-seldon-model')!;
        answers.set(`${client} ${model}`, { translated: headerValue(res!.headers, 'x-seldon-translated'), body: JSON.parse(res!.body.toString()) });
      }
    }
    const proba = expect.any(Number) as unknown;
    expect(Object.fromEntries(answers)).toEqual({
      // Seldon's wrapper (the mock) answers a Seldon client as it is, and the v2 server's answer comes back in its form.
      'seldon seldon/wine/main': { translated: undefined, body: { data: { names: ['proba'], ndarray: [[proba]] }, meta: { requestPath: { 'seldon/wine/main': expect.any(String) } } } },
      'seldon seldon/wine/mlserver': { translated: 'seldon->v2', body: { data: { names: ['proba'], ndarray: [[proba]] }, meta: { tags: { served_by: 'seldon/wine/mlserver' } } } },
      'v2 seldon/wine/main': {
        translated: 'v2->seldon',
        body: { model_name: 'classifier', parameters: { requestPath: { 'seldon/wine/main': expect.any(String) } }, outputs: [{ name: 'output-0', shape: [1, 1], datatype: 'FP64', data: [proba] }] },
      },
      'v2 seldon/wine/mlserver': { translated: undefined, body: expect.objectContaining({ model_name: 'classifier', outputs: [{ name: 'proba', shape: [1, 1], datatype: 'FP64', data: [proba] }] }) },
    });
  });

  it('the rollout example progresses and the bandit example records rewards, with the traffic the quick start sends', async () => {
    const routesLine = curls.find((c) => c.url.pathname === '/routes')!;
    type Steered = { name: string; steering?: { rollout?: { transitions: { kind: string }[] }; bandit?: { arms: Record<string, { rewards: number }> } } };
    const steering = async (name: string): Promise<Steered['steering']> => {
      const res = await sendCurl({ ...routesLine, grep: undefined }, Number(routesLine.url.port));
      return (JSON.parse(res?.body.toString() ?? '{}') as { deployments?: Steered[] }).deployments?.find((d) => d.name === name)?.steering;
    };
    const end = Date.now() + 90_000;
    let advanced = false;
    let rewarded = false;
    while ((!advanced || !rewarded) && Date.now() < end) {
      advanced = (await steering('reviews'))?.rollout?.transitions.some((t) => t.kind === 'RolloutAdvanced') ?? false;
      rewarded = Object.values((await steering('recommender'))?.bandit?.arms ?? {}).every((a) => a.rewards > 0);
      if (!advanced || !rewarded) await sleep(500);
    }
    expect(advanced, 'reviews advanced past its first step').toBe(true);
    expect(rewarded, 'every recommender arm has rewards recorded').toBe(true);
  }, 120_000);

  it('the OAuth lines, run by bash as printed: a token from /oauth/token, then a prediction iris-oauth answers', () => {
    const lines = banner.split('\n').map((l) => l.trim());
    const first = lines.findIndex((l) => l.startsWith('TOKEN=$(curl '));
    expect(first, banner).toBeGreaterThan(0);
    const script = lines.slice(first, first + 2).join('\n');
    expect(script).toContain('$TOKEN');
    const r = spawnSync('bash', ['-e', '-o', 'pipefail', '-c', script], { encoding: 'utf8', timeout: 20_000 });
    expect(r.status, `${script}\n${r.stderr}`).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ meta: { requestPath: { 'seldon/iris-oauth/default': expect.any(String) } } });
  });

  it("the terminal has the reader's requests in its access log, and none of the demo's own traffic (a summary line instead)", async () => {
    const end = Date.now() + 45_000;
    while (!qs.output().includes('demo traffic in the last') && Date.now() < end) await sleep(250);
    const access = qs
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"access"'));
    expect(access.filter((l) => l.includes('"user_agent":"curl/8.5.0"')).length, 'the requests sent above').toBeGreaterThan(0);
    expect(
      access.filter((l) => !l.includes('"user_agent":"curl/')),
      'access lines not from curl',
    ).toEqual([]);
    expect(qs.output()).toMatch(/demo traffic in the last 30 s \(not in the access log\): \d+ to seldon\/reviews/);
  }, 60_000);

  it('the admin lines answer 200 (and /metrics has what the grep looks for)', async () => {
    for (const c of curls.filter((x) => !x.url.pathname.startsWith('/seldon/'))) {
      const res = await sendCurl(c, Number(c.url.port));
      expect(res?.status, c.line).toBe(200);
      if (c.grep) expect(res?.body.toString(), c.line).toContain(c.grep);
    }
  });

  it('the shadow example reaches the shadow model too, which answers 200 (the gateway counts it)', async () => {
    const churn = curls.find((c) => c.url.pathname.startsWith('/seldon/seldon/churn/'))!;
    const metricsLine = curls.find((c) => c.url.pathname === '/metrics')!;
    const shadow200 = async (): Promise<number> => {
      const res = await sendCurl({ ...metricsLine, grep: undefined }, Number(metricsLine.url.port));
      const m = /^seldon_gateway_requests_total\{namespace="seldon",deployment="churn",predictor="shadow",protocol="rest",kind="shadow",code="200"\} (\d+)/m.exec(res?.body.toString() ?? '');
      return m ? Number(m[1]) : 0;
    };
    const before = await shadow200();
    const res = await sendCurl(churn, Number(churn.url.port));
    expect(res?.status, res?.body.toString()).toBe(200);
    const end = Date.now() + 3000;
    let after = before;
    while (after === before && Date.now() < end) {
      await sleep(50);
      after = await shadow200();
    }
    expect(after - before, 'shadow answers 200 counted for this request').toBe(1);
  });
});

describe('the quick start shadow example in-process: the primary and the shadow get the same body', () => {
  let gw: TestGateway;
  let main: RecordingUpstream;
  let shadow: RecordingUpstream;

  beforeAll(async () => {
    // Seldon-like strict models: a short or non-JSON body is a 400 MICROSERVICE_BAD_DATA.
    const answer = (name: string) => () => ({
      headers: [
        ['Content-Type', 'application/json'],
        ['x-seldon-model', name],
      ] as HeaderLine[],
      body: JSON.stringify({ data: { names: ['proba'], ndarray: [[0.6]] }, meta: {} }),
    });
    main = await startRecordingUpstream({ name: 'churn-main', strict: true, responder: answer('seldon/churn/main') });
    shadow = await startRecordingUpstream({ name: 'churn-shadow', strict: true, responder: answer('seldon/churn/shadow') });
    const examples = join(root, 'examples/deployments');
    const manifests = Object.fromEntries(readdirSync(examples).map((f) => [f, readFileSync(join(examples, f), 'utf8')]));
    gw = await startTestGateway({ manifests, resolve: { 'churn-main.seldon:8000': main.port, 'churn-shadow.seldon:8000': shadow.port } });
  });
  afterAll(async () => {
    await gw?.stop();
    await main?.close();
    await shadow?.close();
  });

  it('the churn curl line: 200 from main, and the shadow got a copy with the same bytes', async () => {
    const body = Buffer.from('{"data":{"ndarray":[[5.1,3.5,1.4,0.2]]}}');
    const c: Curl = {
      comment: 'a shadow',
      line: '',
      method: 'POST',
      url: new URL(`http://localhost:${gw.port}/seldon/seldon/churn/api/v1.0/predictions`),
      headers: [['content-type', 'application/json']],
      data: body.toString(),
      grep: undefined,
    };
    for (let i = 0; i < 5; i++) {
      const res = await sendCurl(c, gw.port);
      expect(res?.status, res?.body.toString()).toBe(200);
      expect(headerValue(res?.headers ?? [], 'x-seldon-model')).toBe('seldon/churn/main');
    }
    const end = Date.now() + 3000;
    while (shadow.requests.length < 5 && Date.now() < end) await sleep(20);
    await Promise.all([...main.requests, ...shadow.requests].map((r) => Promise.race([r.bodyDone, sleep(3000)])));
    expect(main.requests.map((r) => r.sha256)).toEqual(Array(5).fill(sha256(body)));
    expect(shadow.requests.map((r) => r.sha256)).toEqual(Array(5).fill(sha256(body)));
  });
});
