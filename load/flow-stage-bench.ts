/**
 * The flow stage's own CPU per request below its limit (not a test): one admission and one release
 * through gateway/flow/controller.ts, as the pipeline's flow stage makes them, for a fixed and an
 * adaptive policy, measured with process.cpuUsage over 2,000,000 requests per round. Compare with
 * the gateway's CPU per request from `rest-bench.ts --targets plain,flow` (load/README.md).
 *
 *   npx vite-node load/flow-stage-bench.ts
 */
import { FlowController, type FlowExchange, type FlowSlot } from '../gateway/flow/controller.js';
import { buildTable } from '../routing/table.js';
import { DEFAULT_COMPILE_OPTIONS, type Backend } from '../routing/types.js';
import type { SeldonDeployment } from '../routing/seldon-deployment.js';

const N = 2_000_000;
const ROUNDS = 5;

function backendWith(policy: string): Backend {
  const d: SeldonDeployment = { metadata: { name: 'flowed', namespace: 'bench', annotations: { 'seldon.io/gateway-flow': policy } }, spec: { predictors: [{ name: 'main', graph: { name: 'm' } }] } };
  return buildTable([d], DEFAULT_COMPILE_OPTIONS).groups[0]!.members[0]!.backend;
}

for (const policy of ['concurrency: 10000\nqueue: 100\nqueueTimeout: 1s', 'concurrency: adaptive\nqueue: 100\nqueueTimeout: 1s']) {
  const backend = backendWith(policy);
  const flow = new FlowController();
  let slot: FlowSlot | undefined;
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  class Request implements FlowExchange {
    readonly backend = backend;
    header(name: string): string | undefined {
      return headers[name];
    }
    deadlineMs(): number {
      return Infinity;
    }
    onGone(): void {}
    refuse(): void {
      throw new Error('refused below the limit');
    }
    forward(s: FlowSlot): void {
      slot = s;
    }
  }
  const ns: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const c0 = process.cpuUsage();
    for (let i = 0; i < N; i++) {
      flow.admit(new Request());
      slot!.release(true);
    }
    const c = process.cpuUsage(c0);
    ns.push(((c.user + c.system) * 1000) / N);
  }
  ns.sort((a, b) => a - b);
  console.log(`${policy.split('\n')[0]}: ${ns[ROUNDS >> 1]!.toFixed(0)} ns CPU per request (median of ${ROUNDS} rounds of ${N.toLocaleString('en')}; all: ${ns.map((n) => n.toFixed(0)).join(', ')})`);
}
