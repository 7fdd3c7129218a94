/**
 * What the ports of Emissary's KAT classes share (test/gateway/rest/emissary-kat-*.test.ts): a kat-server
 * stand-in (cmd/kat-server/services/http.go: it answers JSON naming its backend and echoing the request it
 * got, with no Content-Type of its own, so Go's sniffing sends `text/plain; charset=utf-8`), and one gateway
 * fed the class's hand-written Mappings through a SeldonDeployment's `seldon.io/ambassador-config` (cluster
 * scope, so the KAT's own prefixes such as /target/ are served) and its Module through --ambassador-module.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { request } from 'undici';
import { startHttpBackend, type HttpBackend } from '../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from './gateway.js';

export interface KatAnswerOptions {
  /**
   * A request with `kat-req-http-requested-backend-delay` is held, never answered: the gateway's timeout ends it,
   * as the delay outlasted Emissary's timeout in the KAT (no sleep stands in for it). The first attempt of its
   * `x-case` is answered all the same when it asks so with `kat-req-first-attempt-answers: true` (a retry's first try).
   */
  readonly holdDelayed?: boolean;
}

/** kat-server's answer: `{backend, request: {method, url, headers}}` as text/plain, the status `kat-req-http-requested-status` asks for. */
export function katAnswer(backend: string, opts: KatAnswerOptions = {}): (req: IncomingMessage, res: ServerResponse) => void {
  const attempts = new Map<string, number>();
  return (req, res) => {
    if (opts.holdDelayed === true && req.headers['kat-req-http-requested-backend-delay'] !== undefined) {
      const id = String(req.headers['x-case']);
      const n = (attempts.get(id) ?? 0) + 1;
      attempts.set(id, n);
      if (!(n === 1 && req.headers['kat-req-first-attempt-answers'] === 'true')) return;
    }
    const status = Number(req.headers['kat-req-http-requested-status'] ?? 200);
    const body = JSON.stringify({ backend, request: { method: req.method, url: req.url, headers: req.headers } }, null, 2);
    res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
}

/** A kat-server stand-in on loopback that says it is `name`. */
export const startKatBackend = (name: string, opts: KatAnswerOptions = {}): Promise<HttpBackend> => startHttpBackend({ name, handler: katAnswer(name, opts) });

/** A Mapping document: `apiVersion`, `kind`, `name`, then the class's own lines. */
export const katMapping = (name: string, lines: string[]): string => ['apiVersion: getambassador.io/v3alpha1', 'kind: Mapping', `name: ${name}`, ...lines].join('\n');

export interface KatGateway {
  readonly gw: TestGateway;
  stop(): Promise<void>;
}

/**
 * One gateway with `module` (the `ambassador` Module's config lines; none when null) and these Mappings,
 * in one SeldonDeployment of `namespace` (more deployments in `extra`, file name → manifest); `resolve`
 * points Service addresses at loopback backends.
 */
export async function katGateway(opts: {
  module: string[] | null;
  mappings: string[];
  resolve: Record<string, number>;
  namespace?: string;
  extra?: Record<string, string>;
  args?: string[];
}): Promise<KatGateway> {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-kat-'));
  const args = ['--custom-config-scope', 'cluster', ...(opts.args ?? [])];
  if (opts.module !== null) {
    const file = join(dir, 'module.yaml');
    writeFileSync(file, ['apiVersion: getambassador.io/v3alpha1', 'kind: Module', 'name: ambassador', 'config:', ...opts.module.map((l) => `  ${l}`)].join('\n'));
    args.push('--ambassador-module', file);
  }
  const manifests = { 'kat.yaml': sdep('kat', opts.namespace ?? 'default', { predictors: [{ name: 'main' }] }, { 'seldon.io/ambassador-config': opts.mappings.join('\n---\n') }), ...opts.extra };
  const gw = await startTestGateway({ manifests, resolve: opts.resolve, args }).catch((err: unknown) => {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  });
  return {
    gw,
    async stop() {
      await gw.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface KatResult {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

/** One GET through the gateway, the answer's body as bytes (not decoded). */
export async function katGet(port: number, path: string, headers: Record<string, string> = {}): Promise<KatResult> {
  const r = await request(`http://127.0.0.1:${port}${path}`, { headers });
  return { status: r.statusCode, headers: r.headers, body: Buffer.from(await r.body.arrayBuffer()) };
}
