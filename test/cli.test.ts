/**
 * The command line as users run it: `node dist/gateway/main.js …` (built by the global setup).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { OPTIONS } from '../gateway/config.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const examples = join(root, 'examples/deployments');

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface RoutesJson {
  deployments: { namespace: string; name: string; state: string; reasons: string[]; routes: { kind: string; match: { prefix?: string }; members: { id: string; percent: number; upstream: string }[]; mirrors: { id: string; percent: number }[] }[] }[];
}

describe('seldon-gateway routes', () => {
  it('prints a readable tree of the examples and exits 0', () => {
    const r = cli(['routes', '-f', examples]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('REST /seldon/seldon/income/');
    expect(r.out).toMatch(/75%\s+seldon\/income\/main\s+→ income-main\.seldon:8000/);
    expect(r.out).toMatch(/25%\s+seldon\/income\/canary/);
    expect(r.out).toMatch(/mirror 100%\s+seldon\/churn\/shadow/);
    expect(r.out).toContain('REST /seldon/seldon/fraud/ [x-region=eu]');
    expect(r.out).toMatch(/80%\s+seldon\/sentiment\/main/);
    expect(r.out).toMatch(/20%\s+seldon\/sentiment-v2\/main/);
    expect(r.out).toContain('REST /seldon/seldon/iris-explainer/default/');
    expect(r.out).toMatch(/SKIPPED\s+seldon\/pricing/);
  });

  it('--regex-max-size / SELDON_GATEWAY_REGEX_MAX_SIZE: a header regex over the limit (200) rejects its deployment; a larger limit takes it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-regex-'));
    const manifest = {
      apiVersion: 'machinelearning.seldon.io/v1',
      kind: 'SeldonDeployment',
      metadata: { name: 'rx', namespace: 'seldon', annotations: { 'seldon.io/ambassador-regex-header': 'x-v: (?:a?){99}b' } },
      spec: { predictors: [{ name: 'main', graph: { name: 'm' } }] },
    };
    writeFileSync(join(dir, 'rx.json'), JSON.stringify(manifest));
    // Exit 1 says some deployment was rejected.
    const state = (args: string[], env: Record<string, string> = {}) => {
      const r = cli(['routes', '-f', dir, '--json', ...args], env);
      const d = (JSON.parse(r.out) as RoutesJson).deployments.find((x) => x.name === 'rx')!;
      expect(r.code, r.err).toBe(d.state === 'rejected' ? 1 : 0);
      return d;
    };
    const dflt = state([]);
    expect(dflt.state).toBe('rejected');
    expect(dflt.reasons.join(' ')).toContain('its RE2 program size is 201, over 200 (--regex-max-size');
    expect(state(['--regex-max-size', '201']).state).toBe('accepted');
    expect(state([], { SELDON_GATEWAY_REGEX_MAX_SIZE: '300' }).state).toBe('accepted');
    const bad = cli(['routes', '-f', dir, '--regex-max-size', '0']);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--regex-max-size');
  });

  it('--json gives the /routes shape; --ambassador-id and AMBASSADOR_ID select the scoped deployment', () => {
    const r = cli(['routes', '-f', examples, '--json']);
    expect(r.code).toBe(0);
    const t = JSON.parse(r.out) as RoutesJson;
    const income = t.deployments.find((d) => d.name === 'income')!;
    expect(income.state).toBe('accepted');
    const rest = income.routes.find((x) => x.kind === 'rest')!;
    expect(rest.match.prefix).toBe('/seldon/seldon/income/');
    expect(rest.members.map((m) => [m.id, m.percent])).toEqual([
      ['seldon/income/canary', 25],
      ['seldon/income/main', 75],
    ]);
    expect(t.deployments.find((d) => d.name === 'pricing')!.state).toBe('skipped');

    for (const [args, env] of [[['--ambassador-id', 'blue'], {}], [[], { AMBASSADOR_ID: 'blue' }]] as const) {
      const blue = JSON.parse(cli(['routes', '-f', examples, '--json', ...args], env).out) as RoutesJson;
      expect(blue.deployments.find((d) => d.name === 'pricing')!.state).toBe('accepted');
      expect(blue.deployments.find((d) => d.name === 'iris')!.state).toBe('skipped');
    }
  });

  it('single-namespace mode adds the un-namespaced prefixes (flag and env)', () => {
    for (const [args, env] of [[['--single-namespace', '--namespace', 'seldon'], {}], [[], { AMBASSADOR_SINGLE_NAMESPACE: 'true', AMBASSADOR_NAMESPACE: 'seldon' }]] as const) {
      const r = cli(['routes', '-f', examples, ...args], env);
      expect(r.code).toBe(0);
      expect(r.out).toContain('REST /seldon/iris/');
      expect(r.out).toContain('REST /seldon/seldon/iris/');
    }
    expect(cli(['routes', '-f', examples]).out).not.toContain('REST /seldon/iris/');
  });

  it('exits 1 and names the reason when a deployment is rejected, 2 on usage errors', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sgw-cli-'));
    writeFileSync(join(dir, 'ok.yaml'), readFileSync(join(examples, '01-iris.yaml')));
    writeFileSync(
      join(dir, 'bad.yaml'),
      JSON.stringify({ apiVersion: 'machinelearning.seldon.io/v1', kind: 'SeldonDeployment', metadata: { name: 'bad', namespace: 'seldon' }, spec: { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'main' }] } }),
    );
    const r = cli(['routes', '-f', dir]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/REJECTED\s+seldon\/bad/);
    expect(r.out).toContain('a:b:c');
    expect(r.out).toContain('REST /seldon/seldon/iris/');
    expect(cli(['routes']).code).toBe(2);
    expect(cli(['routes', '-f', dir, '--no-such-flag']).code).toBe(2);
    expect(cli(['frobnicate']).code).toBe(2);
  });

  it('--help lists every option with its environment name; --version prints the package version', () => {
    const help = cli(['serve', '--help']);
    expect(help.code).toBe(0);
    for (const o of OPTIONS.filter((x) => x.commands.includes('serve') && x.env)) {
      expect(help.out).toContain(`--${o.flag}`);
      expect(help.out).toContain(o.env);
    }
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string };
    expect(cli(['--version']).out.trim()).toBe(pkg.version);
  });

  it('the README configuration reference lists every option', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    for (const o of OPTIONS.filter((x) => x.env)) {
      expect(readme).toContain(`\`--${o.flag}\``);
      expect(readme).toContain(`\`${o.env}\``);
    }
  });
});
