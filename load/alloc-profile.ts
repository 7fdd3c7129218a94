/**
 * Where a request's allocations come from: V8's sampling heap profile of a compiled gateway
 * (served in one process, load/lib/alloc-profile-child.ts) under REST or gRPC load, every
 * allocation kept (young and full collections' included), as bytes per request by allocating
 * function, by the gateway function nearest on its stack (what in the gateway asked for it, even
 * when Node's or a package's code made the object), and by folder. `alloc-bench.ts` gives the
 * totals to compare builds; this says what to cut.
 *
 *   npm run build && npx vite-node load/alloc-profile.ts [--protocol rest|grpc] [--seconds 5] [--top 25] [--main dist/gateway/main.js] [--args="--access-log off"]
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as grpc from '@grpc/grpc-js';
import { atCleanup, nodeScript, runMain, startAnnounced, startServer, waitFor, which } from './lib/children.js';
import { ClosedLoop } from './lib/closed-loop.js';
import { GATEWAY_MAIN } from './lib/gateway.js';
import { seldonClient, startBenchBackend } from './lib/grpc.js';
import { freePort, postStatus } from './lib/http.js';
import { originOf } from './lib/cpuprofile.js';
import { f0, f1, log, table } from './lib/report.js';

const LIB = join(dirname(fileURLToPath(import.meta.url)), 'lib');
const PATH = '/seldon/load/bench/api/v1.0/predictions';
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';

interface Frame {
  readonly functionName: string;
  readonly url: string;
  readonly lineNumber: number;
}
interface HeapNode {
  readonly id: number;
  readonly callFrame: Frame;
  readonly selfSize: number;
  readonly children: HeapNode[];
}
interface HeapProfile {
  readonly head: HeapNode;
  readonly samples: readonly { size: number; nodeId: number }[];
}

const projectFrame = (f: Frame): boolean => /\/dist\/(gateway|routing)\//.test(f.url);
const frameName = (f: Frame): string => `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*\/dist\//, '').replace(/^file:\/\//, '')}:${f.lineNumber + 1}`;

/** Bytes by allocating function, by nearest project frame, and by origin of the allocating function. */
export function summarise(profile: HeapProfile): { total: number; self: Map<string, number>; nearest: Map<string, number>; origins: Map<string, number> } {
  const bytes = new Map<number, number>();
  for (const s of profile.samples) bytes.set(s.nodeId, (bytes.get(s.nodeId) ?? 0) + s.size);
  const self = new Map<string, number>();
  const nearest = new Map<string, number>();
  const origins = new Map<string, number>();
  let total = 0;
  const add = (m: Map<string, number>, k: string, v: number): void => void m.set(k, (m.get(k) ?? 0) + v);
  const walk = (n: HeapNode, stack: Frame[]): void => {
    const b = bytes.get(n.id) ?? 0;
    if (b > 0) {
      total += b;
      add(self, frameName(n.callFrame), b);
      add(origins, originOf(n.callFrame.url, n.callFrame.functionName), b);
      let near: Frame | undefined;
      for (let i = stack.length - 1; i >= 0 && near === undefined; i--) if (projectFrame(stack[i]!)) near = stack[i];
      add(nearest, near ? frameName(near) : `(no gateway frame) ${frameName(n.callFrame)}`, b);
    }
    stack.push(n.callFrame);
    for (const c of n.children) walk(c, stack);
    stack.pop();
  };
  walk(profile.head, []);
  return { total, self, nearest, origins };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      protocol: { type: 'string', default: 'rest' },
      seconds: { type: 'string', default: '5' },
      top: { type: 'string', default: '25' },
      main: { type: 'string', default: GATEWAY_MAIN },
      args: { type: 'string', default: '' },
      conns: { type: 'string', default: '16' },
    },
  });
  const seconds = Number(values.seconds);
  const dir = mkdtempSync(join(tmpdir(), 'alloc-profile-'));
  atCleanup(() => rmSync(dir, { recursive: true, force: true }));
  const restPort = await freePort();
  const backend = startServer('backend', join(dir, 'backend.log'), undefined, [process.execPath, ...nodeScript(LIB, 'node-backend')], { BENCH_PORT: String(restPort) });
  await waitFor('backend', backend, async () => (await postStatus(`http://127.0.0.1:${restPort}/`, BODY)) === 200);
  const grpcModel = await startBenchBackend('model');
  writeFileSync(
    join(dir, 'bench.yaml'),
    JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'bench', namespace: 'load' }, spec: { predictors: [{ name: 'default' }] } }),
  );
  const out = join(dir, 'heap.json');
  const args = [
    '--manifests',
    dir,
    '--port',
    '0',
    '--admin-port',
    '0',
    '--host',
    '127.0.0.1',
    '--resolve',
    `bench-default.load:8000=127.0.0.1:${restPort}`,
    '--resolve',
    `bench-default.load:5001=127.0.0.1:${grpcModel.port}`,
    ...values.args.split(/\s+/).filter(Boolean),
  ];
  const lines: string[] = [];
  const child = await startAnnounced('gateway', [process.execPath, ...nodeScript(LIB, 'alloc-profile-child')], {
    env: { ALLOC_DIST: dirname(values.main), ALLOC_ARGS: JSON.stringify(args), ALLOC_OUT: out },
    port: (l) => (l.startsWith('READY ') ? Number(l.slice(6)) : undefined),
    onLine: (l) => lines.push(l),
  });
  const said = async (word: string): Promise<void> => {
    const until = Date.now() + 60_000;
    while (!lines.includes(word)) {
      if (Date.now() > until) throw new Error(`the gateway did not say ${word}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    lines.length = 0;
  };
  let requests = 0;
  const load = async (s: number): Promise<number> => {
    if (values.protocol === 'rest') {
      const wrk = which('wrk');
      if (!wrk) throw new Error('needs wrk (apt-get install -y wrk)');
      return (await new ClosedLoop(wrk, 0, BODY, dir).run(`http://127.0.0.1:${child.port}${PATH}`, Number(values.conns), s)).completed;
    }
    const clients = [0, 1].map(() => seldonClient(`127.0.0.1:${child.port}`));
    const md = new grpc.Metadata();
    md.set('seldon', 'bench');
    md.set('namespace', 'load');
    const end = performance.now() + s * 1000;
    let ok = 0;
    const request = { data: { names: ['a', 'b', 'c', 'd'], tensor: { shape: [1, 4], values: [5.1, 3.5, 1.4, 0.2] } } };
    const loop = (c: (typeof clients)[number]): Promise<void> =>
      new Promise((resolve) => {
        const once = (): void => {
          if (performance.now() >= end) return resolve();
          c.Predict(request, md, (err) => {
            if (!err) ok++;
            once();
          });
        };
        once();
      });
    await Promise.all(Array.from({ length: 8 }, (_, i) => loop(clients[i % 2]!)));
    for (const c of clients) c.close();
    return ok;
  };
  await load(2); // warm-up: JIT, pools
  child.child.stdin!.write('start\n');
  await said('STARTED');
  requests = await load(seconds);
  child.child.stdin!.write('stop\n');
  await said('STOPPED');
  await child.stop();
  grpcModel.close();

  const s = summarise(JSON.parse(readFileSync(out, 'utf8')) as HeapProfile);
  const top = Number(values.top);
  const rows = (m: Map<string, number>): string[][] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, v]) => [k, f0(v / requests), f1((100 * v) / s.total)]);
  log(`# alloc-profile ${values.protocol}: ${f0(requests)} ${values.protocol === 'rest' ? 'requests' : 'calls'} in ${seconds} s, ${values.main} ${args.slice(-1).join(' ')}`);
  log(
    `sampled allocations: ${f0(s.total / requests)} bytes per ${values.protocol === 'rest' ? 'request' : 'call'} (V8's sampling heap profiler, every allocation kept; alloc-bench.ts measures the exact total)\n`,
  );
  log('By origin of the allocating function:\n');
  log(table(['origin', 'B/req', '%'], rows(s.origins)));
  log('\nBy the gateway function nearest on the stack:\n');
  log(table(['gateway frame', 'B/req', '%'], rows(s.nearest)));
  log('\nBy allocating function:\n');
  log(table(['function', 'B/req', '%'], rows(s.self)));
}

runMain('alloc-profile', main);
