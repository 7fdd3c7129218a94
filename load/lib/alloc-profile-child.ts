/**
 * The process `alloc-profile.ts` profiles: a compiled gateway (ALLOC_DIST, a dist/gateway folder)
 * served in this one process (process/serve.js, the data plane here, no cluster) with its flags
 * (ALLOC_ARGS, JSON), and V8's sampling heap profiler, which keeps the samples of objects young
 * and full collections freed, so the profile is every allocation, not what survived. Announces
 * `READY <port>`; on the stdin line `start` it starts sampling (`STARTED`), on `stop` it writes the
 * profile to ALLOC_OUT (`STOPPED`). Exits when stdin closes.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import { pino } from 'pino';

const dist = process.env.ALLOC_DIST!;
const { parseConfig } = (await import(pathToFileURL(`${dist}/config/parse.js`).href)) as { parseConfig: (cmd: string, args: string[], env: object) => unknown };
const { startGateway } = (await import(pathToFileURL(`${dist}/process/serve.js`).href)) as {
  startGateway: (config: unknown, o: { logger: unknown }) => Promise<{ port: number; ready(): boolean }>;
};
const gw = await startGateway(parseConfig('serve', JSON.parse(process.env.ALLOC_ARGS!) as string[], {}), { logger: pino({ level: 'warn' }, process.stderr) });
const until = Date.now() + 30_000;
while (!gw.ready() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
const session = new Session();
session.connect();
process.stdout.write(`READY ${gw.port}\n`);
createInterface({ input: process.stdin })
  .on('line', (line) => {
    void (async () => {
      if (line === 'start') {
        await session.post('HeapProfiler.startSampling', {
          samplingInterval: Number(process.env.ALLOC_INTERVAL ?? 256),
          includeObjectsCollectedByMajorGC: true,
          includeObjectsCollectedByMinorGC: true,
        });
        process.stdout.write('STARTED\n');
      } else if (line === 'stop') {
        const { profile } = await session.post('HeapProfiler.stopSampling');
        writeFileSync(process.env.ALLOC_OUT!, JSON.stringify(profile));
        process.stdout.write('STOPPED\n');
      }
    })();
  })
  .on('close', () => process.exit(0));
