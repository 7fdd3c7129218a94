/**
 * TLS benchmark (not a test): what TLS termination costs the gateway, beside nginx terminating
 * TLS with the same certificate in front of the same backend. One run, interleaved rounds:
 *
 *   keep-alive    wrk -t1 at --conns connections: the gateway over cleartext and over TLS (one
 *                 gateway, --tls-allow-cleartext, the same port), nginx over TLS
 *   full          a new TLS connection per request, no session resumption (a full handshake each)
 *   resumed       a new TLS connection per request, resuming the last session (a ticket)
 *   cleartext/conn  a new cleartext connection per request (the gateway): the connection cost
 *                 without TLS, to read the handshake's own share off
 *
 * Connection-per-request load comes from a small node:tls client (below, run as a child on the
 * load core) that sends `Connection: close` requests from --hs-conns loops and counts resumed
 * sessions itself. CPU per request is the server's process tree utime+stime from /proc (the
 * gateway's primary and worker, nginx's master and worker) over the requests it answered
 * (load/lib/measure.ts); handshakes per second per core is 1e6 / (µs of CPU per connection).
 *
 * Targets: the gateway's TLS keep-alive CPU/request at most 1.3x its cleartext one; its full
 * handshakes per second per core at least 0.67x nginx's.
 *
 *   npm run bench -- tls [--rounds 2] [--duration 3] [--key rsa]
 *
 * Both servers: TLS 1.2 minimum (they negotiate 1.3 with these clients), their default ciphers,
 * session tickets on (nginx: `ssl_session_tickets on`, no session cache; the gateway: one ticket
 * key per process). Certificates are made with the openssl CLI in a temporary directory.
 * Everything listens on and talks to 127.0.0.1 only; every run is bounded in time; every child
 * is stopped on the way out (load/lib/children.ts).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateManifests, MEASURED, predictionPath } from '../lib/bench-table.js';
import { atCleanup, pinned, pinSelf, runMain, runToEnd, startScript, which } from '../lib/children.js';
import { ClosedLoop } from '../lib/closed-loop.js';
import { counter, metricsText, nodeArgsOf, restUpstreams, startGateway } from '../lib/gateway.js';
import { freePort, postStatus } from '../lib/http.js';
import { measure, quietMedian, type Accounted, type Target } from '../lib/measure.js';
import { nginxBinary, proxyConf, startBackend, startNginx } from '../lib/nginx.js';
import { CLK_TCK } from '../lib/proc.js';
import { numbers } from '../lib/options.js';
import { QuietGate } from '../lib/quiet.js';
import { f0, f1, f2, log, median, ratio, table, verdict } from '../lib/report.js';

const { values: argv } = parseArgs({
  options: {
    rounds: { type: 'string' },
    duration: { type: 'string' },
    conns: { type: 'string' },
    'hs-conns': { type: 'string' },
    key: { type: 'string' },
    tls12: { type: 'boolean' },
    node: { type: 'string' },
    'load-cpu': { type: 'string' },
    'server-cpu': { type: 'string' },
  },
  allowPositionals: false,
});
const n = numbers(argv, { rounds: 2, duration: 3, conns: 64, 'hs-conns': 16, 'load-cpu': 0, 'server-cpu': 1 });
const [ROUNDS, DURATION_S, CONNS, HS_CONNS, LOAD_CPU, SERVER_CPU] = [n.rounds, n.duration, n.conns, n['hs-conns'], n['load-cpu'], n['server-cpu']] as const;
const KEY = argv.key === 'rsa' ? 'rsa' : 'ec';
const MAX_VERSION = argv.tls12 ? 'TLSv1.2' : 'TLSv1.3';
const SERVER_NODE = argv.node ?? process.execPath;
const QUIET_PCT = 10;
const QUIET = new QuietGate(Number(process.env.BENCH_QUIET_BUDGET ?? 60) * 1000, QUIET_PCT);
const BODY = '{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}';
const SERVERNAME = 'bench.test';
const PATH = predictionPath(MEASURED);

/**
 * The connection-per-request client (a child on the load core, node: modules only): `conns`
 * loops, each opening a connection (TLS unless `tls` is false; resuming the newest session when
 * `resume`), sending one `Connection: close` POST and reading the answer to the server's close.
 */
const CLIENT = String.raw`
import net from 'node:net';
import tls from 'node:tls';
const c = JSON.parse(process.env.BENCH_TLS_CLIENT);
const request = 'POST ' + c.path + ' HTTP/1.1\r\nHost: ' + c.servername + '\r\nContent-Type: application/json\r\nContent-Length: ' + Buffer.byteLength(c.body) + '\r\nConnection: close\r\n\r\n' + c.body;
let completed = 0, failed = 0, resumed = 0, handshakes = 0, session;
const codes = {};
const started = Date.now();
const deadline = started + c.seconds * 1000;
const one = () => new Promise((resolve) => {
  let head = '';
  const s = c.tls
    ? tls.connect({ host: '127.0.0.1', port: c.port, servername: c.servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'], maxVersion: c.maxVersion, ...(c.resume && session ? { session } : {}) })
    : net.connect(c.port, '127.0.0.1');
  if (c.tls) s.on('session', (x) => { if (c.resume) session = x; });
  s.once(c.tls ? 'secureConnect' : 'connect', () => {
    if (c.tls) { handshakes++; if (s.isSessionReused()) resumed++; }
    s.write(request);
  });
  s.on('data', (d) => { if (head.length < 16) head += d.toString('latin1', 0, 16); });
  s.on('error', (e) => { codes[e.code ?? e.message] = (codes[e.code ?? e.message] ?? 0) + 1; });
  s.setTimeout(5000, () => s.destroy(new Error('timeout')));
  s.on('close', () => { if (head.startsWith('HTTP/1.1 200')) completed++; else failed++; resolve(); });
});
const loop = async () => { while (Date.now() < deadline) await one(); };
await Promise.all(Array.from({ length: c.conns }, loop));
const seconds = (Date.now() - started) / 1000;
process.stdout.write('BENCH_JSON ' + JSON.stringify({ completed, failed, resumed, handshakes, seconds, codes }) + '\n');
`;

interface ConnResult {
  completed: number;
  failed: number;
  resumed: number;
  handshakes: number;
  seconds: number;
  codes: Record<string, number>;
}

async function connectionPerRequest(port: number, mode: 'full' | 'resumed' | 'cleartext', seconds: number): Promise<ConnResult> {
  const config = { port, path: PATH, body: BODY, servername: SERVERNAME, conns: HS_CONNS, seconds, tls: mode !== 'cleartext', resume: mode === 'resumed', maxVersion: MAX_VERSION };
  const r = await runToEnd(pinned([process.execPath, '--input-type=module', '--eval', CLIENT], LOAD_CPU), (seconds + 30) * 1000, { BENCH_TLS_CLIENT: JSON.stringify(config) });
  const line = r.stdout.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`TLS client failed (${r.code}): ${r.stdout}\n${r.stderr}`);
  return JSON.parse(line.slice(11)) as ConnResult;
}

/** A CA and a certificate for SERVERNAME signed by it, with the openssl CLI. */
function makeCertificate(dir: string): { cert: string; key: string } {
  mkdirSync(dir, { recursive: true });
  const run = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const newKey = KEY === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  run(['req', '-x509', ...newKey, '-nodes', '-keyout', join(dir, 'ca.key'), '-out', join(dir, 'ca.crt'), '-days', '2', '-subj', '/CN=Bench CA', '-addext', 'basicConstraints=critical,CA:TRUE']);
  run(['req', ...newKey, '-nodes', '-keyout', join(dir, 'tls.key'), '-out', join(dir, 'tls.csr'), '-subj', `/CN=${SERVERNAME}`]);
  writeFileSync(join(dir, 'ext'), `subjectAltName=DNS:${SERVERNAME}\nextendedKeyUsage=serverAuth\n`);
  run([
    'x509',
    '-req',
    '-in',
    join(dir, 'tls.csr'),
    '-CA',
    join(dir, 'ca.crt'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-set_serial',
    '1',
    '-days',
    '2',
    '-extfile',
    join(dir, 'ext'),
    '-out',
    join(dir, 'tls.crt'),
  ]);
  return { cert: join(dir, 'tls.crt'), key: join(dir, 'tls.key') };
}

interface Row {
  rps: number;
  usPerReq: number | null;
  backendUsPerReq: number;
  errors: number;
  errorDetail: string;
  resumedPct: number | null;
  otherPct: number;
}

async function main(): Promise<void> {
  pinSelf(LOAD_CPU);
  const cores = cpus().length;
  if (Math.max(LOAD_CPU, SERVER_CPU) >= cores) throw new Error(`only ${cores} cores: --load-cpu/--server-cpu must be < ${cores}`);
  const wrk = which('wrk');
  if (!wrk) throw new Error('wrk is needed for the keep-alive runs (apt-get install -y wrk)');
  const nginx = nginxBinary();
  const tmp = mkdtempSync(join(tmpdir(), 'tls-bench-'));
  atCleanup(() => rmSync(tmp, { recursive: true, force: true }));
  const pair = makeCertificate(join(tmp, 'certs'));
  const loop = new ClosedLoop(wrk, LOAD_CPU, BODY, tmp);

  const { pid: backendPid, port: backendPort } = await startBackend(tmp, SERVER_CPU, { nginx: true });

  // ----- The gateway: TLS and cleartext on one port (its settings in the environment, as a pod has them).
  const manifests = join(tmp, 'manifests');
  generateManifests(manifests, 100);
  const { upstreams } = restUpstreams(manifests);
  // No access log: nginx has none either (access_log off).
  const gateway = await startGateway('gateway', {
    log: join(tmp, 'gateway.log'),
    cpu: SERVER_CPU,
    manifests,
    upstreams,
    backendPort,
    nodeArgs: nodeArgsOf(process.env.BENCH_GATEWAY_NODE_ARGS),
    node: SERVER_NODE,
    env: { SELDON_GATEWAY_TLS_CERT: pair.cert, SELDON_GATEWAY_TLS_KEY: pair.key, SELDON_GATEWAY_TLS_ALLOW_CLEARTEXT: 'true', SELDON_GATEWAY_ACCESS_LOG: 'off' },
  });
  if ((await postStatus(`http://127.0.0.1:${gateway.port}${PATH}`, BODY)) !== 200) throw new Error(`the gateway does not answer:\n${gateway.server.output().slice(-2000)}`);

  const targets: (Target & { tls: boolean })[] = [
    { key: 'gateway cleartext', label: 'gateway, cleartext', url: `http://127.0.0.1:${gateway.port}${PATH}`, proxyPid: gateway.server.pid, tls: false },
    { key: 'gateway TLS', label: 'gateway, TLS', url: `https://127.0.0.1:${gateway.port}${PATH}`, proxyPid: gateway.server.pid, tls: true },
  ];
  if (nginx) {
    const port = await freePort();
    const s = await startNginx('nginx-tls', SERVER_CPU, proxyConf(join(tmp, 'nginx-tls'), port, backendPort, pair), async () => {
      const r = await connectionPerRequest(port, 'full', 0.2).catch(() => null);
      return r !== null && r.completed > 0;
    });
    targets.push({ key: 'nginx TLS', label: 'nginx, TLS (1 worker)', url: `https://127.0.0.1:${port}${PATH}`, proxyPid: s.pid, tls: true });
  }
  // The floor of a Node TLS proxy: a minimal undici proxy on node:https (load/lib/tls-floor-proxy.ts), every mode.
  const tlsEnv = { BENCH_UPSTREAM_PORT: String(backendPort), BENCH_TLS_CERT: pair.cert, BENCH_TLS_KEY: pair.key };
  const handshakes = async (port: number): Promise<boolean> => ((await connectionPerRequest(port, 'full', 0.2).catch(() => null))?.completed ?? 0) > 0;
  const floor = await startScript('tls-floor-proxy', tmp, SERVER_CPU, tlsEnv, { node: SERVER_NODE, ready: handshakes });
  targets.push({ key: 'floor TLS', label: 'floor: minimal undici proxy on node:https', url: `https://127.0.0.1:${floor.port}${PATH}`, proxyPid: floor.pid, tls: true });
  // Connection-per-request runs only: Node's TLS stack alone (lib/node-backend.ts over TLS, answering itself).
  const bare = await startScript('node-backend', tmp, SERVER_CPU, tlsEnv, { name: 'node-https', node: SERVER_NODE, ready: handshakes });
  const barePort = bare.port;
  const nodeHttps = { key: 'bare node:https', label: 'node:https answering itself', url: `https://127.0.0.1:${barePort}${PATH}`, proxyPid: bare.pid, tls: true };

  log(`# tls-bench ${new Date().toISOString()}  node ${process.version}, ${cores} cores, CLK_TCK ${CLK_TCK}`);
  log(
    `servers' node: ${SERVER_NODE} ${execFileSync(SERVER_NODE, ['-p', 'process.version + " (OpenSSL " + process.versions.openssl + ")"'], { encoding: 'utf8' }).trim()}; ${nginx ? spawnSync(nginx, ['-V'], { encoding: 'utf8' }).stderr.split('\n').slice(0, 2).join(', ') : 'nginx: absent'}`,
  );
  log(`certificate: ${KEY === 'rsa' ? 'RSA 2048' : 'ECDSA P-256'}; clients offer up to ${MAX_VERSION}; ${ROUNDS} interleaved rounds of ${DURATION_S}s runs, medians`);
  log(`keep-alive: wrk -t1 -c${CONNS}; connection per request: node:tls client, ${HS_CONNS} loops, Connection: close`);
  log(`load generators on core ${LOAD_CPU}; gateway / nginx and the ${nginx ? 'nginx' : 'node:http'} backend on core ${SERVER_CPU}; CPU = the server's process tree (utime+stime)`);
  log("floor TLS: a minimal undici proxy on node:https (load/lib/tls-floor-proxy.ts), nothing of the gateway's: the least a Node TLS proxy costs");
  log("bare node:https (connection per request only): https.createServer with the same certificate, answering itself (no proxying): Node's TLS stack alone");
  if (!nginx) log('note: nginx is not installed: no nginx rows, no handshake ratio');
  log('');

  // Warm-up: JIT, pools, tickets.
  for (const t of targets) {
    await loop.run(t.url, CONNS, 1);
    if (t.tls) await connectionPerRequest(Number(new URL(t.url).port), 'full', 1);
  }
  await connectionPerRequest(barePort, 'full', 1);

  const cells = new Map<string, Row[]>();
  /** One run's row, under `<mode>|<target>`. */
  const record = (round: number, mode: string, key: string, m: Accounted<unknown>, rps: number, errors: number, errorDetail: string, resumedPct: number | null): void => {
    const row: Row = { rps, usPerReq: m.proxyUsPerReq, backendUsPerReq: m.backendUsPerReq, errors, errorDetail, resumedPct, otherPct: m.otherPct };
    cells.set(`${mode}|${key}`, [...(cells.get(`${mode}|${key}`) ?? []), row]);
    const resumed = resumedPct === null ? '–' : `${f0(resumedPct)}%`;
    log(`round ${round + 1} ${mode.padEnd(16)} ${key.padEnd(18)} ${f0(rps).padStart(7)} req/s  ${f1(row.usPerReq).padStart(6)} µs CPU/req  resumed ${resumed}  (other load ${f0(m.otherPct)}%)`);
  };
  const metrics0 = await metricsText(gateway.admin);
  for (let round = 0; round < ROUNDS; round++) {
    // The two gateway runs stay side by side (their order alternating): the keep-alive target is
    // their ratio, and this host drifts by more than that ratio's margin within a round.
    const units = [targets.slice(0, 2), ...targets.slice(2).map((t) => [t])];
    if (round % 2 === 1) units[0]!.reverse();
    const order = units.map((_, i) => units[(i + round) % units.length]!).flat();
    for (const t of order) {
      const m = await measure(t, backendPid, QUIET, () => loop.run(t.url, CONNS, DURATION_S));
      record(round, 'keep-alive', t.key, m, m.result.rps, m.result.non2xx + m.result.socketErrors, m.result.errorDetail, null);
    }
    for (const mode of ['full', 'resumed', 'cleartext'] as const) {
      for (const t of [...order, nodeHttps]) {
        if (mode === 'cleartext' ? t.key !== 'gateway cleartext' : !t.tls) continue;
        const m = await measure(t, backendPid, QUIET, () => connectionPerRequest(Number(new URL(t.url).port), mode, DURATION_S));
        const r = m.result;
        const codes = Object.entries(r.codes).map(([k, v]) => `${k} ${v}`);
        record(
          round,
          mode === 'cleartext' ? 'conn/request' : `${mode} handshake`,
          t.key,
          m,
          r.completed / r.seconds,
          r.failed,
          codes.join(', '),
          mode === 'cleartext' ? null : (100 * r.resumed) / Math.max(1, r.handshakes),
        );
      }
    }
  }

  // ----- Tables: medians over the undisturbed runs (all runs when none was).
  const med = (k: string, pick: (r: Row) => number | null): number | null => quietMedian(cells.get(k) ?? [], pick, QUIET_PCT);
  const cpu = (k: string): number | null => med(k, (r) => r.usPerReq);
  log('');
  const rows: string[][] = [];
  for (const k of cells.keys()) {
    const [mode, target] = k.split('|') as [string, string];
    const us = cpu(k);
    const errs = (cells.get(k) ?? []).reduce((a, r) => a + r.errors, 0);
    rows.push([
      mode,
      target,
      f0(med(k, (r) => r.rps)),
      f1(us),
      mode === 'keep-alive' ? '' : f0(us ? 1e6 / us : null),
      f1(med(k, (r) => r.backendUsPerReq)),
      med(k, (r) => r.resumedPct) === null ? '' : `${f0(med(k, (r) => r.resumedPct))}%`,
      String(errs),
    ]);
  }
  log(table(['mode', 'server', 'req/s', 'µs CPU/req', 'conns/s per core', 'backend µs/req', 'resumed', 'errors'], rows));

  const gwClear = cpu('keep-alive|gateway cleartext');
  const gwTls = cpu('keep-alive|gateway TLS');
  // Each round's TLS run over the cleartext run beside it.
  const clearRows = cells.get('keep-alive|gateway cleartext') ?? [];
  const paired = (cells.get('keep-alive|gateway TLS') ?? []).map((r, i) => (r.usPerReq ?? NaN) / (clearRows[i]?.usPerReq ?? NaN)).filter(Number.isFinite);
  const pairedMedian = paired.length ? median(paired) : null;
  const gwFull = cpu('full handshake|gateway TLS');
  const ngFull = cpu('full handshake|nginx TLS');
  const gwResumed = cpu('resumed handshake|gateway TLS');
  const ngResumed = cpu('resumed handshake|nginx TLS');
  const gwConn = cpu('conn/request|gateway cleartext');
  const perCore = (us: number | null): number | null => (us ? 1e6 / us : null);
  log('');
  log(
    table(
      ['target', 'measured', 'target', 'verdict'],
      [
        [
          "gateway TLS / cleartext CPU per request, keep-alive (median of the rounds' side-by-side pairs)",
          pairedMedian !== null ? `${f2(pairedMedian)}x (${paired.map((x) => f2(x)).join(', ')}; medians ${f1(gwTls)} / ${f1(gwClear)} µs = ${ratio(gwTls, gwClear)})` : '–',
          '≤ 1.3x',
          verdict(pairedMedian !== null ? pairedMedian <= 1.3 : null),
        ],
        [
          'full handshakes per second per core, gateway / nginx',
          gwFull !== null && ngFull !== null ? `${f0(perCore(gwFull))} / ${f0(perCore(ngFull))} = ${ratio(perCore(gwFull), perCore(ngFull))}` : '–',
          '≥ 0.67x',
          verdict(gwFull !== null && ngFull !== null ? ngFull / gwFull >= 0.67 : null),
        ],
      ],
    ),
  );
  log('');
  log(`resumed handshakes per second per core: gateway ${f0(perCore(gwResumed))}, nginx ${f0(perCore(ngResumed))} (${ratio(perCore(gwResumed), perCore(ngResumed))})`);
  const bareFull = cpu('full handshake|bare node:https');
  log(
    `Node's own TLS stack (bare node:https, no proxying) vs nginx (proxying), full handshakes per second per core: ${f0(perCore(bareFull))} / ${f0(perCore(ngFull))} = ${ratio(perCore(bareFull), perCore(ngFull))}`,
  );
  const flFull = cpu('full handshake|floor TLS');
  const flTls = cpu('keep-alive|floor TLS');
  log(
    `the floor (a minimal undici proxy on node:https) vs nginx, full handshakes per second per core: ${f0(perCore(flFull))} / ${f0(perCore(ngFull))} = ${ratio(perCore(flFull), perCore(ngFull))}; the gateway / the floor: ${ratio(perCore(gwFull), perCore(flFull))} (keep-alive TLS CPU per request: ${ratio(gwTls, flTls)} the floor's)`,
  );
  if (gwFull !== null && gwConn !== null)
    log(
      `the gateway's full TLS handshake alone: ${f1(gwFull - gwConn)} µs of CPU (a TLS connection per request ${f1(gwFull)} µs, a cleartext one ${f1(gwConn)} µs); resumed: ${f1(gwResumed !== null ? gwResumed - gwConn : null)} µs`,
    );
  const m1 = await metricsText(gateway.admin);
  const delta = (labels: Record<string, string>): number => counter(m1, 'seldon_gateway_tls_handshakes_total', labels) - counter(metrics0, 'seldon_gateway_tls_handshakes_total', labels);
  log(
    `gateway counters over the runs: handshakes ${f0(delta({}))} (resumed ${f0(delta({ resumed: 'true' }))}), handshake errors ${f0(counter(m1, 'seldon_gateway_tls_handshake_errors_total', {}) - counter(metrics0, 'seldon_gateway_tls_handshake_errors_total', {}))}`,
  );
  log(`ratio of CPU: gateway full-handshake connection / nginx: ${f2(gwFull !== null && ngFull !== null ? gwFull / ngFull : null)}`);
}

runMain('tls-bench', main);
