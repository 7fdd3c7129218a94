/**
 * Model replicas in a process of their own, as real model servers are: the four loopback pods
 * (test/fixtures/loopback-replicas.ts) answering every request in `PODS_MS` ms (default 8). In the
 * load generator's process, at 2,000 requests/s, their answers went late whenever that process
 * was busy sending: 1-1.5% of them more than 1.5x the median, which a `p95` route hedges, so a
 * benchmark "without tail events" had them all the same (the hedging scenario's --vs-main).
 *
 * Announces `READY <rest port>`. On the stdin line `arrivals <prefix>` it prints
 * `ARRIVALS <prefix> <n>`: the requests whose pod id starts with `prefix`. Exits when stdin closes.
 * Run with vite-node (it imports the fixture's TypeScript).
 */
import { createInterface } from 'node:readline';
import { LoopbackPods, REPLICA_IPS } from '../../test/fixtures/loopback-replicas.js';

const ms = Number(process.env.PODS_MS ?? 8);
const pods = new LoopbackPods(() => ms, false, 64, true);
for (const ip of REPLICA_IPS) await pods.start(ip);
process.stdout.write(`READY ${pods.restPort}\n`);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    const [word, prefix] = line.split(' ');
    if (word !== 'arrivals' || prefix === undefined) return;
    let n = 0;
    for (const a of pods.arrivals) if (a.id.startsWith(prefix)) n++;
    process.stdout.write(`ARRIVALS ${prefix} ${n}\n`);
  })
  .on('close', () => void pods.close().then(() => process.exit(0)));
