/**
 * --custom-config-prefixes over real sockets: Seldon's documented custom config (a Mapping with
 * `prefix: /mycompany/ml/` on a SeldonDeployment in namespace seldon) serves with
 * `seldon=/mycompany/` under the default custom-config scope, and no other namespace can claim
 * /mycompany/; without the grant the Mapping is dropped with a reason that names the flag.
 */
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { UsageError } from '../../../gateway/config/values.js';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { routesReport } from '../../helpers/observability.js';

/** Seldon's documentation example, as written there. */
const SELDON_EXAMPLE = sdep(
  'production-model',
  'seldon',
  { name: 'production-model', predictors: [{ name: 'example' }] },
  {
    'seldon.io/ambassador-config':
      'apiVersion: ambassador/v1\nkind: Mapping\nname: seldon_example_rest_mapping\nprefix: /mycompany/ml/\nservice: production-model-example.seldon:8000\ntimeout_ms: 3000',
  },
);
/** Another tenant that tries the same prefix, and one under it. */
const THIEF = sdep(
  'thief',
  'team-x',
  { predictors: [{ name: 'main' }] },
  {
    'seldon.io/ambassador-config':
      'apiVersion: ambassador/v1\nkind: Mapping\nname: steal\nprefix: /mycompany/ml/api/\nservice: thief-main.team-x:8000\n---\napiVersion: ambassador/v1\nkind: Mapping\nname: own\nprefix: /seldon/team-x/thief/\nservice: thief-main.team-x:8000',
  },
);

async function predict(gw: TestGateway, path: string): Promise<{ status: number; backend: string | undefined }> {
  const r = await request(`${gw.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"data":{"ndarray":[[1]]}}' });
  await r.body.dump();
  return { status: r.statusCode, backend: r.headers['x-backend'] as string | undefined };
}

describe('--custom-config-prefixes', () => {
  let model: HttpBackend;
  let thief: HttpBackend;
  let granted: TestGateway;
  let plain: TestGateway;

  beforeAll(async () => {
    model = await startHttpBackend({ name: 'production' });
    thief = await startHttpBackend({ name: 'thief' });
    const manifests = { 'example.yaml': SELDON_EXAMPLE, 'thief.yaml': THIEF };
    const resolve = { 'production-model-example.seldon:8000': model.port, 'thief-main.team-x:8000': thief.port };
    granted = await startTestGateway({ manifests, resolve, args: ['--custom-config-prefixes', 'seldon=/mycompany/'] });
    plain = await startTestGateway({ manifests, resolve });
  });
  afterAll(async () => {
    await granted?.stop();
    await plain?.stop();
    await model?.close();
    await thief?.close();
  });

  it("Seldon's documented example serves with seldon=/mycompany/: the model gets the request", async () => {
    const before = model.requests.length;
    expect(await predict(granted, '/mycompany/ml/api/v1.0/predictions')).toEqual({ status: 200, backend: 'production' });
    expect(model.requests[before]!.url).toBe('/api/v1.0/predictions');
    expect((await routesReport(granted.adminUrl, 'production-model')).state).toBe('accepted');
  });

  it('no other namespace can claim the granted prefix: its Mapping is dropped, and never reached', async () => {
    const report = await routesReport(granted.adminUrl, 'thief');
    expect(report.state).toBe('degraded');
    expect(report.reasons.join('\n')).toMatch(/Mapping "steal" dropped: prefix "\/mycompany\/ml\/api\/" is not under \/seldon\/team-x\//);
    const before = thief.requests.length;
    for (let i = 0; i < 20; i++) expect((await predict(granted, '/mycompany/ml/api/v1.0/predictions')).backend).toBe('production');
    expect(thief.requests.length).toBe(before);
    // Its own prefix still serves.
    expect((await predict(granted, '/seldon/team-x/thief/api/v1.0/predictions')).backend).toBe('thief');
  });

  it('without the grant the Mapping is dropped, and the reason names the flag', async () => {
    const report = await routesReport(plain.adminUrl, 'production-model');
    expect(report.state).toBe('rejected');
    expect(report.reasons.join('\n')).toContain('prefix "/mycompany/ml/" is not under /seldon/seldon/ (--custom-config-prefixes seldon=/prefix/ grants more)');
    const before = model.requests.length;
    expect((await predict(plain, '/mycompany/ml/api/v1.0/predictions')).status).toBe(404);
    expect(model.requests.length).toBe(before);
  });

  it.each([
    ['seldon=/mycompany', 'must end with "/"'],
    ['seldon=/', 'must end with "/" and be more than "/"'],
    ['seldon=/seldon/other/', "paths under /seldon/ are their namespaces' own"],
    ['nonamespace', 'is not NAMESPACE=/prefix/'],
    ['a=/x/,b=/x/y/', '/x/y/ overlaps /x/, granted to namespace "a"'],
  ])('a bad grant (%s) is a usage error in the gateway’s words', (value, message) => {
    let err: unknown;
    try {
      parseConfig('serve', ['--custom-config-prefixes', value], {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toContain('--custom-config-prefixes: ');
    expect((err as Error).message).toContain(message);
  });
});
