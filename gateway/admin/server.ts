/**
 * The admin listener (its own port, never the public one): liveness, readiness, the live route
 * table (`/routes`, indented with `?pretty`), Prometheus metrics, and the diagnostics page (`/`,
 * one deployment with `?deployment=<namespace>/<name>`, data at `/diagnostics`). With a token
 * (`--admin-token-file`), everything but liveness and readiness needs it (login.ts).
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { protectAdmin } from './login.js';
import type { RedisStatus } from '../auth/redis.js';
import { renderPage } from './page.js';
import type { DiagnosticsJson } from './page-model.js';
import type { AdminToken } from './token.js';
import { tableJson, type DeploymentJson } from '../../routing/table/describe.js';
import type { RouteGroup, RouteTable } from '../../routing/types.js';
import type { SteeringJson } from '../steer/describe.js';
import type { KeySetState } from '../auth/jwt-keys.js';
import type { EjectedEndpointJson } from '../observe/ejections-view.js';
import type { ProcessMemory } from '../observe/process-memory.js';

export interface AdminSources {
  /** True once the first full sync produced a table, and until shutdown starts. */
  ready(): boolean;
  /** Why not ready, for the /readyz body. */
  readiness(): string;
  /** The shared store (--redis-url), for /readyz: which topology and primary, or why in fallback. */
  redis?(): RedisStatus;
  /** The JWT providers' key sets (--jwt-providers), for /readyz: keys held, when fetched, the last fetch's failure. */
  jwtKeys?(): readonly KeySetState[];
  table(): RouteTable;
  appliedAt(): Date;
  /** Prometheus exposition text and its content type. */
  metrics(): Promise<{ contentType: string; body: string }>;
  /** Source problems (files that do not parse, API server unreachable), keyed by where. */
  problems(): ReadonlyMap<string, string>;
  /** The diagnostics page's data: the table with what was observed over the last minutes. */
  diagnostics?(): Promise<DiagnosticsJson>;
  /** Rollouts and bandits as this replica knows them, by deployment key (gateway/steer/describe.ts). */
  steering?(): ReadonlyMap<string, SteeringJson>;
  /** A steered group with its live shares (what the workers apply). */
  steer?(group: RouteGroup): RouteGroup;
  /** The endpoints ejected now by endpoint health, by deployment key (observe/ejections-view.ts). */
  ejections?(): Promise<ReadonlyMap<string, readonly EjectedEndpointJson[]>>;
  /** What each process holds (observe/process-memory.ts); `gc`: after forced full collections. */
  memory?(gc: boolean): Promise<readonly ProcessMemory[]>;
}

const queryOf = (req: { query: unknown }): Record<string, unknown> => (typeof req.query === 'object' && req.query !== null ? (req.query as Record<string, unknown>) : {});

export function createAdminApp(sources: AdminSources, options: { token?: AdminToken } = {}): FastifyInstance {
  const app = Fastify({ logger: false });
  if (options.token) protectAdmin(app, options.token);
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ok = sources.ready();
    // Redis away does not make a replica unready: it serves in fallback, and says so here.
    const redis = sources.redis?.();
    // Nor does an identity provider away: the keys held keep verifying; what is held shows here.
    const jwt = sources.jwtKeys?.();
    return reply.code(ok ? 200 : 503).send({ status: ok ? 'ready' : 'not ready', detail: sources.readiness(), ...(redis ? { redis } : {}), ...(jwt ? { jwtProviders: jwt } : {}) });
  });
  app.get('/routes', async (req, reply) => {
    const json = tableJson(sources.table(), sources.appliedAt(), sources.steer?.bind(sources));
    const steering = sources.steering?.();
    const ejected = await sources.ejections?.();
    const deployments: (DeploymentJson & { steering?: SteeringJson; ejectedEndpoints?: readonly EjectedEndpointJson[] })[] =
      steering?.size || ejected?.size
        ? json.deployments.map((d) => {
            const key = `${d.namespace}/${d.name}`;
            const s = steering?.get(key);
            const e = ejected?.get(key);
            return s || e ? { ...d, ...(s ? { steering: s } : {}), ...(e ? { ejectedEndpoints: e } : {}) } : d;
          })
        : json.deployments;
    const body = { ...json, deployments, sourceProblems: Object.fromEntries(sources.problems()) };
    // `?pretty` (any value): indented, for people reading it in a browser or a terminal.
    if (queryOf(req).pretty !== undefined) return reply.type('application/json; charset=utf-8').send(`${JSON.stringify(body, null, 2)}\n`);
    return body;
  });
  const memory = sources.memory?.bind(sources);
  if (memory) {
    // `?gc` (any value): each process collects garbage first (a full GC pauses it: an operator's or a soak's question, never a probe's).
    app.get('/memory', async (req) => ({ processes: await memory(queryOf(req).gc !== undefined) }));
  }
  app.get('/metrics', async (_req, reply) => {
    const m = await sources.metrics();
    return reply.type(m.contentType).send(m.body);
  });
  const diagnostics = sources.diagnostics?.bind(sources);
  if (diagnostics) {
    app.get('/diagnostics', async () => diagnostics());
    app.get('/', async (req, reply) => {
      const only = queryOf(req).deployment;
      return reply
        .type('text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(renderPage(await diagnostics(), { only: typeof only === 'string' && only !== '' ? only : undefined }));
    });
  }
  return app;
}
