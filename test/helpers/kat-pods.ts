/**
 * Pods behind one Service for the ports of Emissary's KAT classes that need more than one endpoint
 * (test/gateway/upstream/emissary-kat-*.test.ts): kat-server stand-ins on 127.0.0.2 and up at one port, and a
 * gateway over the Kubernetes API stand-in whose EndpointSlice lists them, the class's Mappings in one
 * SeldonDeployment and its Module through --ambassador-module.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino } from 'pino';
import { parseConfig } from '../../gateway/config/parse.js';
import { startGateway, type Gateway } from '../../gateway/process/serve.js';
import { endpointSlice, seldonDeployment, startFakeKubeApi, until, writeKubeconfig, type FakeKubeApi } from '../fixtures/fake-kube-api.js';
import { katAnswer } from './kat.js';

const NS = 'default';
/** The pods' addresses, in order: pod i listens on POD_IPS[i]. */
export const POD_IPS = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6'];

/** `count` kat-server pods on one port, pod i on POD_IPS[i] saying it is `<prefix>-<i+1>` (or answering with `handler(i)`). */
export async function katPods(prefix: string, count = 3, handler?: (pod: number) => (req: IncomingMessage, res: ServerResponse) => void): Promise<{ port: number; close(): Promise<void> }> {
  const servers: http.Server[] = [];
  let port = 0;
  for (const [i, ip] of POD_IPS.slice(0, count).entries()) {
    const s = http.createServer(handler ? handler(i) : katAnswer(`${prefix}-${i + 1}`));
    await new Promise<void>((r) => s.listen(port, ip, r));
    port = (s.address() as AddressInfo).port;
    servers.push(s);
  }
  return {
    port,
    close: async () => {
      for (const s of servers) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  };
}

/** One gateway over the Kubernetes API stand-in (`extraArgs` first): `service`'s slice lists the first `count` pods; the Mappings in one SeldonDeployment. */
export async function lbGateway(
  service: string,
  port: number,
  mappings: string[],
  module: string[] | null,
  count = 3,
  extraArgs: string[] = [],
): Promise<{ gw: Gateway; api: FakeKubeApi; stop(): Promise<void> }> {
  const api = await startFakeKubeApi();
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kat-lb-'));
  api.upsert(
    'endpointslices',
    endpointSlice(
      service,
      NS,
      `${service}-abc`,
      POD_IPS.slice(0, count).map((ip) => ({ ip })),
      [{ name: 'http', port }],
    ),
  );
  api.upsert('seldondeployments', seldonDeployment('kat', NS, undefined, { 'seldon.io/ambassador-config': mappings.join('\n---\n') }));
  const args = [...extraArgs, '--kubernetes', '--kubeconfig', writeKubeconfig(dir, api), '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--workers', '1', '--access-log', 'off'];
  // The Service's own address (its ClusterIP, which kube-proxy spreads): what a Mapping without a
  // load_balancer dials, as under Emissary's default kubernetes-service resolver. Here: the first pod.
  args.push('--custom-config-scope', 'cluster', '--resolve', `${service}.${NS}:${port}=${POD_IPS[0]}:${port}`);
  if (module !== null) {
    const file = join(dir, 'module.yaml');
    writeFileSync(file, ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: ambassador', 'config:', ...module.map((l) => `  ${l}`)].join('\n'));
    args.push('--ambassador-module', file);
  }
  const gw = await startGateway(parseConfig('serve', args, {}), { logger: pino({ level: 'silent' }) });
  await until(() => gw.ready(), 5000, 'ready');
  return {
    gw,
    api,
    async stop() {
      await gw.close();
      await api.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
