/**
 * Where a hedged request shows (docs/routing.md#hedged-requests): four pods whose first arrival of
 * each request is slow (60 ms) and any later one quick, so every hedge wins; the CLI gateway with
 * its access log and a file sink for decision records. Its access-log line counts the hedge apart
 * from retries and names the winner's address; its decision record marks the attempt that lost and
 * the hedge that won; /routes and the admin page show the policy; the metrics count the hedges won
 * and the delay in force.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { firstSlow, HedgingWorld, type Got } from '../../helpers/hedging.js';
import { getJson, getText } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-hedge-seen-'));
const events = join(dir, 'events.jsonl');
let world: HedgingWorld | undefined;

afterAll(async () => {
  await world?.close();
  rmSync(dir, { recursive: true, force: true });
});

type Line = Record<string, unknown>;
const lines = (text: string): Line[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Line);

describe('a hedged request, seen', () => {
  it('in the access log, the decision record, /routes, the admin page and the metrics', async () => {
    writeFileSync(join(dir, 'sinks.yaml'), `- name: decisions\n  type: file\n  path: ${events}\n  batch: 1\n`);
    world = await HedgingWorld.start(
      { seen: { annotations: { 'seldon.io/gateway-hedge': 'after: 10ms\nbudget: 100%', 'seldon.io/gateway-log': 'sinks: [decisions]\nlog: decisions' } } },
      firstSlow(),
      ['--access-log', 'true', '--log-sinks', join(dir, 'sinks.yaml')],
    );
    const w = world;
    const got: Got[] = [];
    for (let i = 0; i < 4; i++) got.push(await w.rest('seen', `rest-${i}`), await w.grpcPredict('seen', `grpc-${i}`));
    for (const g of got) expect(w.fromWinner(g), `${g.id}: ${g.body}`).toBe(true);
    const winner = (g: Got): string => `${/"pod":"([0-9.]+)"/.exec(g.body)![1]}:${g.id.startsWith('rest') ? w.pods.restPort : w.pods.grpcPort}`;
    const hedgedIds = got.filter((g) => w.arrivalsOf((id) => id === g.id).length === 2);
    // Most were hedged (each first arrival waits 60 ms, the hedge goes at 10); those are what is looked at.
    expect(hedgedIds.length).toBeGreaterThanOrEqual(6);

    // The access log: the hedge apart from retries, the winner's address.
    await waitUntil(async () => hedgedIds.every((g) => w.gw.output().includes(`"request_id":"${g.id}"`)), 10_000);
    const access = lines(w.gw.output()).filter((l) => l.msg === 'access');
    for (const g of hedgedIds) {
      const line = access.find((l) => l.request_id === g.id)!;
      expect(line, g.id).toMatchObject({ hedges: 1, retries: 0, upstream_host: winner(g), deployment: 'seen', predictor: 'main' });
    }

    // The decision record: the first attempt lost, the hedge won, each with its endpoint.
    const decisions = (): Line[] => (existsSync(events) ? lines(readFileSync(events, 'utf8')).filter((l) => l.type === 'io.seldon.gateway.decision') : []);
    await waitUntil(async () => hedgedIds.every((g) => decisions().some((d) => d.requestid === g.id)), 10_000);
    for (const g of hedgedIds) {
      const record = decisions().find((d) => d.requestid === g.id)!.data as { attempts: Record<string, unknown>[] };
      // The hedge wins when the first attempt's 60 ms run out first, as on a quiet machine; on a busy one the first may
      // still answer before the hedge does: either way one won (the answer's pod), the other lost, the second is the hedge.
      const said = `${g.id}: ${JSON.stringify(record.attempts)}`;
      expect(record.attempts, said).toEqual(
        record.attempts[1]!.won === true
          ? [
              { endpoint: expect.any(String), lost: true },
              { endpoint: winner(g), status: 200, hedge: true, won: true },
            ]
          : [
              { endpoint: winner(g), status: 200, won: true },
              { endpoint: expect.any(String), hedge: true, lost: true },
            ],
      );
      expect(record.attempts[0]!.endpoint, said).not.toBe(record.attempts[1]!.endpoint);
    }

    // The policy in /routes and on the admin page.
    type Routes = { deployments: { name: string; routes: { members: { hedge?: unknown }[] }[] }[] };
    const routes = (await getJson<Routes>(`http://127.0.0.1:${w.gw.admin}/routes`)).deployments.find((d) => d.name === 'seen')!.routes;
    for (const r of routes) expect(r.members[0]!.hedge).toEqual({ after: '10ms', minMs: 0, minMedians: 0, maxMs: null, budgetPercent: 100, maxAttempts: 2 });
    expect(await getText(`http://127.0.0.1:${w.gw.admin}/?deployment=models/seen`)).toContain('<span class="hedge">hedged after 10ms, budget 100%, 2 attempts at most</span>');

    // The metrics: the hedges won, per protocol, and the delay in force.
    // A hedge won where its record says so (on a busy machine a first attempt may beat it).
    const hedgeWon = (g: Got): boolean => (decisions().find((d) => d.requestid === g.id)!.data as { attempts: { won?: boolean }[] }).attempts[1]!.won === true;
    await w.counted('seen', got.length);
    for (const protocol of ['rest', 'grpc'] as const) {
      const won = hedgedIds.filter((g) => g.id.startsWith(protocol) && hedgeWon(g)).length;
      expect(await w.hedges('seen', 'won', protocol)).toBe(won);
      expect(await w.metric('seldon_gateway_hedge_delay_seconds', { deployment: 'seen', protocol })).toBeCloseTo(0.01, 6);
    }
  });
});
