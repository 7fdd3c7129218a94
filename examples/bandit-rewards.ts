/**
 * Rewards for a bandit deployment, sent as the official Seldon client sends feedback: a
 * prediction, then `POST …/feedback` with `{request, response, reward}` where `response` is the
 * prediction's whole answer (so the attribution token in its `meta.tags` comes back). Which arm
 * answered is read from the token's arm field, only to simulate how good each arm is: a reward of
 * 1 with probability `rates[arm]`, else 0.
 *
 *   node dist/examples/bandit-rewards.js [--url http://localhost:8003] [--deployment seldon/recommender]
 *                                        [--rates a=0.30,b=0.35,c=0.45] [--per-second 20]
 */
import { pathToFileURL } from 'node:url';

export interface RewardLoop {
  /** Predictions answered so far, by arm. */
  readonly served: Record<string, number>;
  stop(): void;
}

/** The arm an attribution token names (`<version>.<arm>.<time>.<nonce>.<mac>`; an arm needing encoding starts with `~`). */
function armOf(token: string | null): string | undefined {
  const arm = token?.split('.')[1];
  return arm === undefined ? undefined : arm.startsWith('~') ? Buffer.from(arm.slice(1), 'base64url').toString() : arm;
}

export function sendRewards(options: { url: string; deployment: string; rates: Record<string, number>; perSecond: number; random?: () => number; userAgent?: string }): RewardLoop {
  const [ns, name] = options.deployment.split('/');
  const base = `${options.url}/seldon/${ns}/${name}/api/v1.0`;
  const random = options.random ?? Math.random;
  const served: Record<string, number> = {};
  const request = { meta: {}, data: { ndarray: [[5.1, 3.5, 1.4, 0.2]] } };
  const headers = { 'content-type': 'application/json', ...(options.userAgent ? { 'user-agent': options.userAgent } : {}) };
  const one = async (): Promise<void> => {
    const p = await fetch(`${base}/predictions`, { method: 'POST', headers, body: JSON.stringify(request) });
    const response: unknown = await p.json();
    const arm = armOf(p.headers.get('seldon-gateway-arm'));
    if (arm === undefined) return;
    served[arm] = (served[arm] ?? 0) + 1;
    const reward = random() < (options.rates[arm] ?? 0) ? 1 : 0;
    const f = await fetch(`${base}/feedback`, { method: 'POST', headers, body: JSON.stringify({ request, response, reward }) });
    await f.arrayBuffer();
  };
  const timer = setInterval(() => void one().catch(() => undefined), 1000 / options.perSecond);
  return { served, stop: () => clearInterval(timer) };
}

function flag(name: string, dflt: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1]! : dflt;
}

export function parseRates(text: string): Record<string, number> {
  return Object.fromEntries(text.split(',').map((kv) => [kv.split('=')[0]!.trim(), Number(kv.split('=')[1])]));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const loop = sendRewards({
    url: flag('url', 'http://localhost:8003'),
    deployment: flag('deployment', 'seldon/recommender'),
    rates: parseRates(flag('rates', 'a=0.30,b=0.35,c=0.45')),
    perSecond: Number(flag('per-second', '20')),
  });
  setInterval(() => process.stdout.write(`served so far: ${JSON.stringify(loop.served)}\n`), 5000).unref();
  process.once('SIGINT', () => {
    loop.stop();
    process.exit(0);
  });
}
