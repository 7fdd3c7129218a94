/**
 * Real highly available Redis topologies on 127.0.0.1 for tests (Debian's redis-server and redis-cli):
 *
 * - `startSentinelSet()`: a primary, two replicas and three sentinels watching it (quorum 2,
 *   down-after 1 s, so a killed primary is replaced within a few seconds);
 * - `startRedisCluster()`: three primaries and three replicas (`redis-cli --cluster create …
 *   --cluster-replicas 1`), cluster-node-timeout 1 s.
 *
 * Ports are free ports the kernel picked; each node has its own temporary directory; `stop()` kills
 * every process and removes the directories. Every wait is on a real event (a replica's INFO
 * replication saying it is linked, a sentinel naming the primary, CLUSTER INFO state:ok), bounded.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './net.js';
import { sleep } from './wait.js';

const run = promisify(execFile);

/** TLS files of a node (a set started with `tls`): redis-cli needs them to talk to it. */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}
const tlsOf = new Map<number, TlsFiles>();

/** One redis-cli command against 127.0.0.1:`port` (over TLS if it is a TLS node); its output, trimmed. Rejects when the server does not answer. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const tls = tlsOf.get(port);
  const { stdout } = await run('redis-cli', ['-h', '127.0.0.1', '-p', String(port), ...(tls ? ['--tls', '--cacert', tls.ca] : []), ...args], { timeout: 5000 });
  return stdout.trim();
}

/** Poll `probe` every 50 ms until it returns something other than undefined, or fail after `ms` naming `what`. */
export async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 30_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms${last instanceof Error ? ` (${last.message})` : ''}`);
    await sleep(50);
  }
}

/**
 * `redis-cli MONITOR` on `port`, started (its OK read) before this resolves; `stop()` returns the commands it saw
 * before it was called. Redis streams MONITOR lines to the watcher after it runs each command, so a command the
 * gateway already had its answer to may not have reached the watcher yet: `stop()` sends a marker (`ECHO`) on a
 * connection of its own and waits for the watcher to show it; every command run before the marker is shown before it.
 */
export async function monitor(port: number): Promise<{ stop(): Promise<string[]> }> {
  const child = spawn('redis-cli', ['-h', '127.0.0.1', '-p', String(port), 'MONITOR'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  await waitFor(`MONITOR on ${port}`, async () => (out.startsWith('OK') ? true : undefined), 10_000);
  return {
    async stop() {
      const marker = `monitor-end-${process.pid}-${Math.random().toString(36).slice(2)}`;
      await redisCli(port, 'ECHO', marker);
      await waitFor(`MONITOR on ${port} showing its end marker`, async () => (out.includes(marker) ? true : undefined), 30_000);
      const gone = once(child, 'exit');
      child.kill('SIGKILL');
      await gone;
      // One line per command ("<time> [<db> <client>] ..."); a script's source may span several.
      const lines = out.slice(0, out.indexOf(marker)).split('\n');
      return lines.slice(0, -1).filter((l) => /^\d+\.\d+ \[/.test(l));
    },
  };
}

export interface RedisNode {
  readonly port: number;
  /** Alive (not killed). */
  readonly running: boolean;
  /** SIGKILL, like a crash; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGSTOP: it holds what it was sent, unread, until `resume` (a stalled node, not a dead one). */
  pause(): void;
  /** SIGCONT after `pause`. */
  resume(): void;
}

class Node implements RedisNode {
  private proc: ChildProcess | undefined;

  constructor(
    readonly port: number,
    private readonly conf: string,
    private readonly sentinel = false,
  ) {}

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    this.proc = spawn('redis-server', this.sentinel ? [this.conf, '--sentinel'] : [this.conf], { stdio: 'ignore' });
    this.proc.on('error', () => undefined);
    await waitFor(`redis-server on ${this.port}`, async () => ((await redisCli(this.port, 'PING')) === 'PONG' ? true : undefined), 10_000);
  }

  pause(): void {
    this.proc?.kill('SIGSTOP');
  }

  resume(): void {
    this.proc?.kill('SIGCONT');
  }

  async kill(): Promise<void> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = once(p, 'exit');
    p.kill('SIGKILL');
    await gone;
  }
}

/** Listening on `port`: plain, or TLS only (replication and sentinels' links too). */
function listen(port: number, tls: TlsFiles | undefined): string[] {
  if (!tls) return [`port ${port}`];
  tlsOf.set(port, tls);
  return ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`, 'tls-auth-clients no', 'tls-replication yes'];
}

function nodeConf(dir: string, port: number, extra: string[], tls?: TlsFiles): string {
  const file = join(dir, `${port}.conf`);
  // A replica's first sync starts at once (Redis waits 5 s by default for more replicas to share it); each node's log is kept for a failure's message.
  writeFileSync(
    file,
    [
      ...listen(port, tls),
      'bind 127.0.0.1',
      `dir ${dir}`,
      `dbfilename dump-${port}.rdb`,
      `logfile ${logOf(dir, port)}`,
      'save ""',
      'appendonly no',
      'protected-mode no',
      'repl-diskless-sync-delay 0',
      ...extra,
      '',
    ].join('\n'),
  );
  return file;
}

function logOf(dir: string, port: number): string {
  return join(dir, `redis-${port}.log`);
}

/** The last lines of a node's log, for a failure's message. */
function logTail(dir: string, port: number, lines = 12): string {
  try {
    return readFileSync(logOf(dir, port), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** `role` and, for a replica, whether its link to the primary is up (INFO replication). */
async function replication(port: number): Promise<{ role: string; linked: boolean; replicas: number }> {
  const info = await redisCli(port, 'INFO', 'replication');
  const field = (k: string): string | undefined => new RegExp(`^${k}:(.*)$`, 'm').exec(info)?.[1]?.trim();
  return { role: field('role') ?? '', linked: field('master_link_status') === 'up', replicas: Number(field('connected_slaves') ?? 0) };
}

export interface SentinelSet {
  readonly masterName: string;
  readonly primary: RedisNode;
  readonly replicas: readonly RedisNode[];
  readonly sentinels: readonly RedisNode[];
  /** `redis+sentinel://127.0.0.1:s1,…/<masterName>`. */
  readonly url: string;
  /** The primary the sentinels name now (`SENTINEL get-master-addr-by-name`), as a port. */
  primaryPort(): Promise<number | undefined>;
  /** Wait until every live sentinel names a primary other than `port`, and it says it is one: the promotion. */
  waitForPromotion(oldPort: number, ms?: number): Promise<number>;
  stop(): Promise<void>;
}

/** `tls`: every node and sentinel listens with TLS only (the URL is then `rediss+sentinel://…`). */
export async function startSentinelSet(options: { masterName?: string; tls?: TlsFiles } = {}): Promise<SentinelSet> {
  const tls = options.tls;
  const masterName = options.masterName ?? 'sgwmaster';
  const dir = mkdtempSync(join(tmpdir(), 'sgw-sentinel-'));
  const nodes: Node[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const pPort = await freePort();
    const primaryNode = new Node(pPort, nodeConf(dir, pPort, [], tls));
    nodes.push(primaryNode);
    await primaryNode.start();
    const replicas: Node[] = [];
    for (let i = 0; i < 2; i++) {
      const port = await freePort();
      const r = new Node(port, nodeConf(dir, port, [`replicaof 127.0.0.1 ${pPort}`, 'replica-priority 100'], tls));
      nodes.push(r);
      replicas.push(r);
      await r.start();
    }
    await waitFor('both replicas linked', async () => {
      for (const r of replicas) if (!(await replication(r.port)).linked) return undefined;
      return true;
    });
    const sentinels: Node[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = join(dir, `sentinel-${port}.conf`);
      writeFileSync(
        conf,
        [
          ...listen(port, tls),
          'bind 127.0.0.1',
          `dir ${dir}`,
          'protected-mode no',
          `sentinel monitor ${masterName} 127.0.0.1 ${pPort} 2`,
          `sentinel down-after-milliseconds ${masterName} 1000`,
          `sentinel failover-timeout ${masterName} 10000`,
          `sentinel parallel-syncs ${masterName} 1`,
          '',
        ].join('\n'),
      );
      const s = new Node(port, conf, true);
      nodes.push(s);
      sentinels.push(s);
      await s.start();
    }
    const primaryPort = async (): Promise<number | undefined> => {
      for (const s of sentinels) {
        if (!s.running) continue;
        try {
          const out = (await redisCli(s.port, 'SENTINEL', 'get-master-addr-by-name', masterName)).split('\n');
          if (out.length >= 2) return Number(out[1]);
        } catch {
          // try the next one
        }
      }
      return undefined;
    };
    // Every sentinel sees the replicas and the other sentinels: a failover can be agreed.
    await waitFor('sentinels know each other and the replicas', async () => {
      for (const s of sentinels) {
        const info = await redisCli(s.port, 'SENTINEL', 'master', masterName);
        const field = (k: string): number => Number(new RegExp(`(?:^|\\n)${k}\\n(\\d+)`).exec(info)?.[1] ?? 0);
        if (field('num-slaves') < 2 || field('num-other-sentinels') < 2) return undefined;
      }
      return true;
    });
    return {
      masterName,
      primary: primaryNode,
      replicas,
      sentinels,
      url: `${tls ? 'rediss' : 'redis'}+sentinel://${sentinels.map((s) => `127.0.0.1:${s.port}`).join(',')}/${masterName}`,
      primaryPort,
      async waitForPromotion(oldPort: number, ms = 60_000): Promise<number> {
        return waitFor(
          'a replica promoted by the sentinels',
          async () => {
            const ports = new Set<number>();
            for (const s of sentinels) {
              if (!s.running) continue;
              const out = (await redisCli(s.port, 'SENTINEL', 'get-master-addr-by-name', masterName)).split('\n');
              ports.add(Number(out[1]));
            }
            if (ports.size !== 1) return undefined;
            const port = [...ports][0]!;
            if (port === oldPort) return undefined;
            return (await replication(port)).role === 'master' ? port : undefined;
          },
          ms,
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface RedisClusterSet {
  readonly nodes: readonly RedisNode[];
  /** `redis+cluster://127.0.0.1:p1,…` (every node as a seed). */
  readonly url: string;
  /** Ports of the nodes that are primaries now, with their slot ranges (CLUSTER SHARDS as seen by a live node). */
  primaries(): Promise<Map<number, [number, number][]>>;
  /** The port of the primary serving `key`'s slot now. */
  primaryOf(key: string): Promise<number>;
  /** Wait until a live node reports state:ok and `oldPort` serves no slot: the promotion. */
  waitForPromotion(oldPort: number, ms?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startRedisCluster(): Promise<RedisClusterSet> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-cluster-'));
  const nodes: Node[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    // Twelve distinct ports: the bus port is picked too, as Redis's default (port + 10000) may be another socket's, or past 65535.
    const ports = new Set<number>();
    while (ports.size < 12) ports.add(await freePort());
    const picked = [...ports];
    for (let i = 0; i < 6; i++) {
      const port = picked[i]!;
      const bus = picked[i + 6]!;
      const n = new Node(
        port,
        nodeConf(dir, port, ['cluster-enabled yes', `cluster-port ${bus}`, `cluster-config-file nodes-${port}.conf`, 'cluster-node-timeout 1000', 'cluster-replica-validity-factor 0']),
      );
      nodes.push(n);
    }
    await Promise.all(nodes.map((n) => n.start()));
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'], { timeout: 60_000 });
    const live = (): Node[] => nodes.filter((n) => n.running);
    const clusterOk = async (): Promise<true | undefined> => {
      for (const n of live()) if (!/cluster_state:ok/.test(await redisCli(n.port, 'CLUSTER', 'INFO'))) return undefined;
      return true;
    };
    const primaries = async (): Promise<Map<number, [number, number][]>> => {
      // CLUSTER NODES: "<id> <ip:port@cport> <flags> <master> … <slots…>"
      const out = await redisCli(live()[0]!.port, 'CLUSTER', 'NODES');
      const map = new Map<number, [number, number][]>();
      for (const line of out.split('\n')) {
        const f = line.trim().split(' ');
        if (!f[2]?.includes('master') || f[2].includes('fail')) continue;
        const port = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]);
        const slots = f.slice(8).map((r) => r.split('-').map(Number) as [number, number?]);
        if (slots.length > 0)
          map.set(
            port,
            slots.map(([a, b]) => [a, b ?? a]),
          );
      }
      return map;
    };
    await waitFor('CLUSTER INFO state:ok on every node', clusterOk, 60_000);
    // Every replica linked to its primary: a failover has someone to promote with the data.
    let seen = '';
    let down: number[] = [];
    await waitFor(
      'every replica linked',
      async () => {
        let linked = 0;
        const states: string[] = [];
        down = [];
        for (const n of live()) {
          const r = await replication(n.port);
          states.push(`${n.port} ${r.role}${r.role === 'slave' ? (r.linked ? ' up' : ' down') : ` ${r.replicas} replicas`}`);
          if (r.role === 'slave') {
            if (r.linked) linked++;
            else down.push(n.port);
          }
        }
        seen = states.join(', ');
        return linked === 3 ? true : undefined;
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${seen}${down.map((p) => `\n--- ${p}'s log:\n${logTail(dir, p)}`).join('')}`);
    });
    return {
      nodes,
      url: `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`,
      primaries,
      async primaryOf(key: string): Promise<number> {
        const slot = Number(await redisCli(live()[0]!.port, 'CLUSTER', 'KEYSLOT', key));
        for (const [port, ranges] of await primaries()) if (ranges.some(([a, b]) => slot >= a && slot <= b)) return port;
        throw new Error(`no primary serves slot ${slot}`);
      },
      async waitForPromotion(oldPort: number, ms = 60_000): Promise<void> {
        await waitFor(
          'a replica promoted by the cluster',
          async () => {
            if (!(await clusterOk())) return undefined;
            return (await primaries()).has(oldPort) ? undefined : true;
          },
          ms,
        );
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
