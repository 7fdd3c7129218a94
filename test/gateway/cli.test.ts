/**
 * The command line as users run it: `node dist/gateway/main.js …` (built by the global setup).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { nearest } from '../../gateway/config/hints.js';
import { SECTIONS, valueName } from '../../gateway/config/option.js';
import { OPTIONS } from '../../gateway/config/options.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const examples = join(root, 'examples/deployments');

function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [join(root, 'dist/gateway/main.js'), ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, ...env }, timeout: 20_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

interface RoutesJson {
  deployments: {
    namespace: string;
    name: string;
    state: string;
    reasons: string[];
    routes: { kind: string; match: { prefix?: string }; members: { id: string; percent: number; upstream: string }[]; mirrors: { id: string; percent: number }[] }[];
  }[];
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

    for (const [args, env] of [
      [['--ambassador-id', 'blue'], {}],
      [[], { AMBASSADOR_ID: 'blue' }],
    ] as const) {
      const blue = JSON.parse(cli(['routes', '-f', examples, '--json', ...args], env).out) as RoutesJson;
      expect(blue.deployments.find((d) => d.name === 'pricing')!.state).toBe('accepted');
      expect(blue.deployments.find((d) => d.name === 'iris')!.state).toBe('skipped');
    }
  });

  it('single-namespace mode adds the un-namespaced prefixes (flag and env)', () => {
    for (const [args, env] of [
      [['--single-namespace', '--namespace', 'seldon'], {}],
      [[], { AMBASSADOR_SINGLE_NAMESPACE: 'true', AMBASSADOR_NAMESPACE: 'seldon' }],
    ] as const) {
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
      JSON.stringify({
        apiVersion: 'machinelearning.seldon.io/v1',
        kind: 'SeldonDeployment',
        metadata: { name: 'bad', namespace: 'seldon' },
        spec: { annotations: { 'seldon.io/ambassador-header': 'a:b:c' }, predictors: [{ name: 'main' }] },
      }),
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

  it('routes -f on a path that does not exist is a usage error (exit 2), not a wait for it to appear', () => {
    const missing = join(tmpdir(), 'sgw-no-such-dir', 'sdeps.yaml');
    const r = cli(['routes', '-f', missing]);
    expect(r.code).toBe(2);
    expect(r.err).toBe(`seldon-gateway: -f ${missing}: no such file or directory\n`);
    expect(r.out).toBe('');
  });

  it('a mistyped option names the nearest one; an option of the other command says whose it is; a missing value names its kind', () => {
    const typo = cli(['serve', '--prot', '8080']);
    expect(typo.code).toBe(2);
    expect(typo.err).toBe("seldon-gateway: Unknown option '--prot'. Did you mean '--port'?\n");
    expect(cli(['routes', '-f', examples, '--jsn']).err).toBe("seldon-gateway: Unknown option '--jsn'. Did you mean '--json'?\n");
    expect(cli(['--grace-priod=5s']).err).toBe("seldon-gateway: Unknown option '--grace-priod'. Did you mean '--grace-period'?\n");
    const far = cli(['serve', '--frobnicate']);
    expect(far.code).toBe(2);
    expect(far.err).toBe("seldon-gateway: Unknown option '--frobnicate'. Run 'seldon-gateway serve --help' for the options.\n");
    const other = cli(['routes', '-f', examples, '--port', '1']);
    expect(other.code).toBe(2);
    expect(other.err).toBe("seldon-gateway: Option '--port' is an option of serve, not of routes\n");
    const bare = cli(['serve', '--grace-period']);
    expect(bare.code).toBe(2);
    expect(bare.err).toBe("seldon-gateway: Option '--grace-period <duration>' needs a value\n");
  });

  it('the nearest option: swaps and one-letter slips find it, unrelated words find nothing', () => {
    const flags = OPTIONS.map((o) => o.flag);
    expect(nearest('prot', flags)).toBe('port');
    expect(nearest('admin-prot', flags)).toBe('admin-port');
    expect(nearest('manifest', flags)).toBe('manifests');
    expect(nearest('kubernets', flags)).toBe('kubernetes');
    expect(nearest('tls-allow-cleartxt', flags)).toBe('tls-allow-cleartext');
    expect(nearest('verbose', flags)).toBeUndefined();
    expect(nearest('xyz', flags)).toBeUndefined();
  });

  it('--help groups the options by section, in order, each with a value name (never <value>)', () => {
    for (const command of ['serve', 'routes'] as const) {
      const help = cli([command, '--help']).out;
      expect(help).not.toContain('<value>');
      const options = OPTIONS.filter((o) => o.commands.includes(command));
      const headings = Object.entries(SECTIONS).filter(([section]) => options.some((o) => o.section === section));
      // Each heading once, in SECTIONS order; each option's line between its heading and the next.
      const at = headings.map(([, heading]) => help.indexOf(`\n${heading}:\n`));
      expect(
        at.every((i) => i > 0),
        `${command}: every heading`,
      ).toBe(true);
      expect([...at].sort((a, b) => a - b)).toEqual(at);
      for (const o of options) {
        const line = `\n  ${o.short ? `-${o.short}, ` : ''}--${o.flag}${o.kind === 'boolean' ? '' : ` ${valueName(o)}`}\n`;
        const pos = help.indexOf(line);
        expect(pos, `${command}: ${line.trim()}`).toBeGreaterThan(0);
        const k = headings.findIndex(([section]) => section === o.section);
        expect(pos > at[k]! && (k + 1 === at.length || pos < at[k + 1]!), `${o.flag} under ${SECTIONS[o.section]}`).toBe(true);
      }
    }
    const serve = cli(['serve', '--help']).out;
    for (const line of [
      '--grace-period <duration>',
      '-f, --manifests <path>',
      '--shadow-max-body <size>',
      '--redis-url <url>',
      '--workers <n>',
      '--port <port>',
      '--access-log-format <json|text>',
      '--kubernetes\n',
    ])
      expect(serve).toContain(`  ${line}`);
  });

  it('a bad --log-level is a usage error (exit 2) that lists the levels, from the flag or the environment', () => {
    const expected = 'seldon-gateway: --log-level: "verbose" is not fatal, error, warn, info, debug or trace\n';
    for (const r of [cli(['serve', '-f', examples, '--log-level', 'verbose']), cli(['-f', examples], { SELDON_GATEWAY_LOG_LEVEL: 'verbose' })]) {
      expect(r.code).toBe(2);
      expect(r.err).toBe(expected);
      expect(r.out).toBe('');
    }
  });

  it('a duration without a unit is a usage error naming the flag; with one it is taken', () => {
    const bare = cli(['routes', '-f', examples, '--default-timeout', '3']);
    expect(bare.code).toBe(2);
    expect(bare.err).toBe('seldon-gateway: --default-timeout: "3" has no unit: durations take ms, s, m, h or d (3ms, 3s)\n');
    const env = cli(['serve', '-f', examples], { SELDON_GATEWAY_GRACE_PERIOD: '10' });
    expect(env.code).toBe(2);
    expect(env.err).toMatch(/^seldon-gateway: --grace-period: "10" has no unit/);
    expect(cli(['routes', '-f', examples, '--default-timeout', '3s']).code).toBe(0);
    // The annotations' grammar (routing/values/duration.ts): whole milliseconds, never rounded; `d` and `1m30s` too.
    const fraction = cli(['routes', '-f', examples, '--default-timeout', '1.5ms']);
    expect([fraction.code, fraction.err]).toEqual([2, 'seldon-gateway: --default-timeout: "1.5ms" is not a whole number of milliseconds\n']);
    expect(cli(['routes', '-f', examples, '--default-timeout', '1m30s']).code).toBe(0);
  });

  it('a mistyped command names the nearest one; a word far from every command says where to look', () => {
    const typo = cli(['rotues', '-f', examples]);
    expect(typo.code).toBe(2);
    expect(typo.err).toBe("seldon-gateway: Unknown command 'rotues'. Did you mean 'routes'?\n");
    expect(cli(['frobnicate']).err).toBe("seldon-gateway: Unknown command 'frobnicate'. Run 'seldon-gateway --help' for the commands.\n");
  });

  it('--help is a short overview that lists --version and points at serve --help for every option', () => {
    for (const args of [['--help'], ['-h'], ['help']]) {
      const r = cli(args);
      expect(r.code).toBe(0);
      expect(r.out.split('\n').length).toBeLessThan(40);
      expect(r.out).toContain('  -v, --version\n');
      expect(r.out).toContain("'seldon-gateway serve --help'");
      expect(r.out).toMatch(/^ {2}routes +Print the routing table/m);
    }
    expect(cli(['-v']).code).toBe(0);
    expect(cli(['serve', '--help']).out.split('\n').length).toBeGreaterThan(150);
  });

  it('routes --help says -f is read once (serve is the command that watches it)', () => {
    const line = / {2}-f, --manifests <path>\n {6}(.*)\n/.exec(cli(['routes', '--help']).out)![1]!;
    expect(line).toContain('routes reads it once');
    expect(line).not.toContain('watched for changes');
  });
});
