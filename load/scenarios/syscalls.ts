/**
 * Syscalls per request (the budget: 2 reads, 2 writes, no epoll_ctl), by target, in one run: the raw relay (each client
 * connection piped to its own upstream one), nginx as a keep-alive proxy, and the gateway (the floor scenario's
 * 1,000-deployment table, its 90/10 canary with a header rule; access log off, and on as
 * `gateway-log`), and with `--vs-main` another build's gateway (`gateway-b`). Every target proxies to
 * one nginx `return 200` backend; a fixed number of requests is sent at each connection count
 * (autocannon's `-a`, load/lib/closed-loop.ts) while `strace -c -f` counts every syscall of the target's processes
 * (load/lib/strace.ts). Counts do not depend on other people's load; times under a tracer mean
 * nothing and are not shown.
 *
 *   npm run bench -- syscalls [--requests 20000] [--conns 1,16,64] [--targets relay,nginx,gateway] [--vs-main /base/dist/gateway/main.js]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath } from '../lib/bench-table.js';
import { atCleanup, pinSelf, runMain, startScript, waitFor, which } from '../lib/children.js';
import { ClosedLoop } from '../lib/closed-loop.js';
import { GATEWAY_MAIN, restUpstreams, startGateway } from '../lib/gateway.js';
import { freePort, postStatus } from '../lib/http.js';
import { BACKEND_BODY, proxyConf, startBackend, startNginx } from '../lib/nginx.js';
import { descendants } from '../lib/proc.js';
import { f0, f2, log, table } from '../lib/report.js';
import { straceWhile, type SyscallCounts } from '../lib/strace.js';

const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const ALL = ['relay', 'nginx', 'gateway', 'gateway-log', 'gateway-b'];

/** Syscall groups of the report, by name; what no group names is "other". */
const GROUPS: readonly (readonly [string, readonly string[]])[] = [
  ['reads', ['read', 'readv', 'recvfrom', 'recvmsg']],
  ['writes', ['write', 'writev', 'sendto', 'sendmsg', 'sendfile']],
  ['epoll_wait', ['epoll_wait', 'epoll_pwait', 'epoll_pwait2']],
  ['epoll_ctl', ['epoll_ctl']],
  ['futex', ['futex']],
  ['memory', ['mmap', 'munmap', 'madvise', 'mprotect', 'brk', 'mremap']],
];

interface Target {
  readonly key: string;
  readonly port: number;
  /** The processes to trace (every thread of each). */
  pids(): number[];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '20000' },
      conns: { type: 'string', default: '1,16,64' },
      targets: { type: 'string', default: 'relay,nginx,gateway,gateway-log' },
      'vs-main': { type: 'string' },
      'vs-label': { type: 'string' },
      deployments: { type: 'string', default: '1000' },
    },
  });
  if (!which('strace')) throw new Error('needs strace (apt-get install -y strace)');
  const nginx = which('nginx') !== null;
  const total = Number(values.requests);
  const connsList = values.conns.split(',').map(Number);
  const wanted = new Set(values.targets.split(','));
  if (values['vs-main']) wanted.add('gateway-b');
  for (const t of wanted) if (!ALL.includes(t)) throw new Error(`unknown target ${t}: one of ${ALL.join(', ')}`);
  pinSelf(0);
  const tmp = mkdtempSync(join(tmpdir(), 'syscall-bench-'));
  atCleanup(() => rmSync(tmp, { recursive: true, force: true }));

  const path = predictionPath(MEASURED);
  const answers = (port: number) => async (): Promise<boolean> => (await postStatus(`http://127.0.0.1:${port}${path}`, BODY)) === 200;
  const { port: backendPort, kind } = await startBackend(tmp, 1, { nginx: true });
  if (!nginx) log('note: nginx is not installed: no nginx row, the backend is node:http');

  const tree = (pid: number) => (): number[] => [pid, ...descendants(pid)];
  const targets: Target[] = [];
  if (wanted.has('relay')) {
    const s = await startScript('relay-proxy', tmp, 1, { BENCH_UPSTREAM_PORT: String(backendPort) }, { name: 'relay' });
    targets.push({ key: 'relay', port: s.port, pids: tree(s.pid) });
  }
  if (wanted.has('nginx') && nginx) {
    const port = await freePort();
    const s = await startNginx('proxy-nginx', 1, proxyConf(join(tmp, 'proxy-nginx'), port, backendPort), answers(port));
    targets.push({ key: 'nginx', port, pids: tree(s.pid) });
  }
  const manifests = join(tmp, 'manifests');
  generateManifests(manifests, Number(values.deployments));
  const { upstreams } = restUpstreams(manifests);
  for (const [key, main, args] of [
    ['gateway', GATEWAY_MAIN, ['--access-log', 'off']],
    ['gateway-log', GATEWAY_MAIN, []],
    ['gateway-b', values['vs-main'] ?? GATEWAY_MAIN, ['--access-log', 'off']],
  ] as const) {
    if (!wanted.has(key)) continue;
    const g = await startGateway(key, { log: join(tmp, `${key}.log`), cpu: 1, manifests, upstreams, backendPort, nodeArgs: [], main, args: [...args] });
    await waitFor(key, g.server, answers(g.port));
    targets.push({ key, port: g.port, pids: tree(g.server.pid) });
  }

  // autocannon, not wrk: a fixed count of requests, whatever the speed of the target (a tracer slows it several times).
  const loop = new ClosedLoop(null, 0, BODY, tmp);
  log(`# syscall-bench ${new Date().toISOString()}  node ${process.version}; ${total} requests per cell (POST ${BODY.length}-byte JSON, answer ${BACKEND_BODY.length} bytes), ${kind} backend`);
  log(`targets pinned to core 1 with the backend; client and strace on core 0; gateway: ${GATEWAY_MAIN}${values['vs-main'] ? `, gateway B: ${values['vs-main']}` : ''}`);
  const rows: string[][] = [];
  const details: string[] = [];
  for (const conns of connsList) {
    for (const t of targets) {
      const url = `http://127.0.0.1:${t.port}${path}`;
      await loop.count(url, conns, Math.min(total, 5000)); // warm-up: JIT, pools
      const { result, counts } = await straceWhile(t.pids(), () => loop.count(url, conns, total));
      if (result.non2xx + result.socketErrors > 0 || result.completed !== total) throw new Error(`${t.key}: ${result.completed} answers of ${total}, ${result.non2xx} not 2xx, ${result.errorDetail}`);
      const per = (names: readonly string[]): number => names.reduce((a, n) => a + (counts.get(n) ?? 0), 0) / total;
      const grouped = new Set(GROUPS.flatMap(([, names]) => names));
      const all = [...counts.values()].reduce((a, b) => a + b, 0) / total;
      const other = [...counts].filter(([n]) => !grouped.has(n));
      rows.push([`${t.key} @${conns}`, ...GROUPS.map(([, names]) => f2(per(names))), f2(other.reduce((a, [, c]) => a + c, 0) / total), f2(all)]);
      details.push(`${t.key} @${conns}: ${describe(counts, total)}`);
      log(`${t.key} @${conns}: ${f0(result.completed)} answers in ${result.seconds.toFixed(1)} s traced; ${f2(all)} syscalls per request`);
    }
  }
  log('');
  log(table(['target @connections', ...GROUPS.map(([g]) => `${g}/req`), 'other/req', 'total/req'], rows));
  log('');
  log('By syscall, per request (calls ≥ 0.01 per request):');
  for (const d of details) log(`- ${d}`);
}

function describe(counts: SyscallCounts, total: number): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .filter(([, c]) => c / total >= 0.01)
    .map(([n, c]) => `${n} ${f2(c / total)}`)
    .join(', ');
}

runMain('syscall-bench', main);
