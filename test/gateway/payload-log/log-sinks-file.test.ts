/**
 * The --log-sinks file (a mounted ConfigMap) while the gateway runs, and at start:
 *
 * - a new sink is taken, and a deployment that named it (degraded until then, nothing logged) is
 *   logged to it; a file with a bad entry is refused naming it, the sinks in use stay, and it is
 *   counted; a sink removed degrades the deployments that name it again, nothing sent;
 * - in one process and in a cluster of two workers (the primary reads the file, workers get it);
 * - at start, a bad file, a bad entry, or a redis-stream sink without --redis-url is a usage error:
 *   exit 2, in the gateway's words.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpBackend, type HttpBackend } from '../../fixtures/http-backend.js';
import { startCli, type CliGateway } from '../../helpers/cli.js';
import { startEventReceiver, type EventReceiver } from '../../helpers/event-receiver.js';
import { replaceFile, sdep, startTestGateway, type TestGateway } from '../../helpers/gateway.js';
import { metric } from '../../helpers/metrics.js';
import { routesReport } from '../../helpers/observability.js';
import { waitUntil } from '../../helpers/wait.js';

const root = fileURLToPath(new URL('../../..', import.meta.url));
const PREDICT = '/seldon/ns/iris/api/v1.0/predictions';
const IRIS = sdep('iris', 'ns', { predictors: [{ name: 'main' }] }, { 'seldon.io/gateway-log': 'sinks: [drift]\nlog: decisions' });

const sink = (name: string, r: EventReceiver): string => `- name: ${name}\n  type: cloudevents\n  url: ${r.url}\n`;

/** Write as a ConfigMap update does: the new content renamed into place. */
describe('the log sinks file', () => {
  let audit: EventReceiver;
  let drift: EventReceiver;
  let model: HttpBackend;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    [audit, drift, model] = await Promise.all([startEventReceiver(), startEventReceiver(), startHttpBackend({ name: 'm' })]);
    dir = mkdtempSync(join(tmpdir(), 'sgw-sinks-file-'));
    file = join(dir, 'sinks.yaml');
  });
  afterAll(async () => {
    await Promise.all([audit?.close(), drift?.close(), model?.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const deployment = (admin: string): Promise<{ state: string; reasons: string[] }> => routesReport(admin, 'iris');

  /** Eight predictions, each on a connection of its own (so each may reach another worker). */
  async function predictions(port: number): Promise<void> {
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        const r = await request(`http://127.0.0.1:${port}${PREDICT}`, { method: 'POST', headers: { 'content-type': 'application/json', connection: 'close' }, body: '{}' });
        await r.body.dump();
        expect(r.statusCode).toBe(200);
      }),
    );
  }

  async function steps(port: number, admin: string): Promise<void> {
    // drift is not a sink yet: degraded, nothing logged anywhere.
    expect((await deployment(admin)).reasons.join('\n')).toContain('"drift" is not a sink of this gateway (configured: audit)');
    await predictions(port);
    // A new sink: the deployment is logged to it.
    replaceFile(file, sink('audit', audit) + sink('drift', drift));
    await waitUntil(async () => (await deployment(admin)).state === 'accepted');
    await waitUntil(async () => {
      await predictions(port);
      return drift.events.length >= 8;
    });
    // A bad entry: refused, naming it; the sinks in use stay.
    replaceFile(file, `${sink('audit', audit)}${sink('drift', drift)}- name: lake\n  type: kafka\n  topic: x\n`);
    await waitUntil(async () => (await metric(admin, 'seldon_gateway_log_sinks_reloads_total{result="failure"}')) >= 1);
    const before = drift.events.length;
    await predictions(port);
    await drift.until((e) => e.length >= before + 8);
    expect((await deployment(admin)).state).toBe('accepted');
    // drift gone: degraded again, nothing sent.
    replaceFile(file, sink('audit', audit));
    await waitUntil(async () => (await deployment(admin)).state === 'degraded');
    const after = drift.posts;
    await predictions(port);
    expect(drift.posts).toBe(after);
    expect(audit.posts).toBe(0);
  }

  it('one process: new sinks taken, a bad entry refused with the old set kept, a removed sink degrades its deployments', async () => {
    writeFileSync(file, sink('audit', audit));
    let gw: TestGateway | undefined;
    try {
      gw = await startTestGateway({ manifests: { 'iris.yaml': IRIS }, resolve: { 'iris-main.ns:8000': model.port }, args: ['--log-sinks', file] });
      await steps(gw.port, gw.adminUrl);
    } finally {
      await gw?.stop();
    }
  });

  it('two workers: the primary reads the file, every worker applies it', async () => {
    writeFileSync(file, sink('audit', audit));
    drift.events.length = 0;
    const manifests = mkdtempSync(join(tmpdir(), 'sgw-sinks-m-'));
    writeFileSync(join(manifests, 'iris.yaml'), IRIS);
    let gw: CliGateway | undefined;
    try {
      gw = await startCli(['--manifests', manifests, '--workers', '2', '--resolve', `iris-main.ns:8000=127.0.0.1:${model.port}`, '--log-sinks', file]);
      await steps(gw.port, `http://127.0.0.1:${gw.admin}`);
      expect(gw.output()).toContain('log sinks file not applied');
      expect(gw.output()).toContain('sink \\"lake\\".type: \\"kafka\\" is not one of cloudevents, redis-stream, file');
    } finally {
      await gw?.stop();
      rmSync(manifests, { recursive: true, force: true });
    }
  });

  it('at start, a file that cannot be used is a usage error (exit 2) naming what is wrong', () => {
    const cli = (text: string, extra: string[] = []): { code: number | null; err: string } => {
      writeFileSync(file, text);
      const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), 'serve', '-f', join(root, 'examples/deployments'), '--log-sinks', file, ...extra], {
        encoding: 'utf8',
        timeout: 30_000,
      });
      return { code: r.status, err: r.stderr };
    };
    const bad = cli('- name: seldon\n  type: cloudevents\n  url: ftp://x\n');
    expect(bad).toEqual({ code: 2, err: `seldon-gateway: --log-sinks ${file}: sink "seldon".url: "ftp://x" is not http(s)\n` });
    expect(cli('- name: seldon\n  type: cloudevents\n  url: http://user:secret@x/\n').err).toContain('a URL with credentials is not accepted');
    expect(cli('- name: audit\n  type: redis-stream\n  stream: audit\n')).toEqual({ code: 2, err: `seldon-gateway: --log-sinks ${file}: sink "audit": a redis-stream sink needs --redis-url\n` });
    expect(cli('sinks: [a]\n')).toEqual({ code: 2, err: `seldon-gateway: --log-sinks ${file}: must be a list of sinks (- name: …, type: …)\n` });
    const missing = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), 'serve', '-f', join(root, 'examples/deployments'), '--log-sinks', join(dir, 'nope.yaml')], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect({ code: missing.status, err: missing.stderr }).toEqual({ code: 2, err: `seldon-gateway: --log-sinks: cannot read ${join(dir, 'nope.yaml')}: ENOENT\n` });
  });
});
