/**
 * Helpers of the observability tests: a gateway whose logs go to a stream the test reads,
 * a small Prometheus text parser, and request shortcuts.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { request } from 'undici';
import { startTestGateway, type TestGateway } from './gateway.js';

export const predict = '/api/v1.0/predictions';
export const body = '{"data":{"ndarray":[[1,2]]}}';

/** Everything a logger wrote, as text and as parsed JSON lines. */
export class LogCapture extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: () => void): void {
    this.text += chunk.toString('utf8');
    cb();
  }
  lines(): Record<string, unknown>[] {
    return this.text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }
}

export interface ObservedGateway extends TestGateway {
  /** Main log and access log, when `logs` was asked for. */
  readonly logs: LogCapture | undefined;
}

/** A real gateway (one process) over manifests in a temp dir; `logs: true` captures its logs at trace level. */
export async function startObservedGateway(opts: { manifests: Record<string, string>; resolve?: Record<string, number>; args?: string[]; logs?: boolean }): Promise<ObservedGateway> {
  const logs = opts.logs ? new LogCapture() : undefined;
  const logger = logs ? pino({ level: 'trace', base: { service: 'seldon-gateway' } }, logs) : undefined;
  const gw = await startTestGateway({ ...opts, ...(logger ? { logger, accessSink: logs } : {}) });
  return { ...gw, logs };
}

export async function post(url: string, headers: Record<string, string> = {}, payload: string | Buffer = body) {
  const r = await request(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: payload });
  const text = await r.body.text();
  return { status: r.statusCode, headers: r.headers, text };
}

export async function getText(url: string): Promise<string> {
  const r = await request(url);
  const text = await r.body.text();
  if (r.statusCode !== 200) throw new Error(`${url}: ${r.statusCode} ${text}`);
  return text;
}

export async function getJson<T>(url: string): Promise<T> {
  return JSON.parse(await getText(url)) as T;
}

export interface PromSample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** Prometheus text exposition → samples (HELP/TYPE lines skipped). */
export function parseMetrics(text: string): PromSample[] {
  const out: PromSample[] = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/.exec(line);
    if (!m) throw new Error(`not a Prometheus sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels include `labels`. */
export function metricSum(samples: readonly PromSample[], name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(labels).every(([k, v]) => s.labels[k] === v)) sum += s.value;
  }
  return sum;
}

export async function scrape(adminUrl: string): Promise<PromSample[]> {
  return parseMetrics(await getText(`${adminUrl}/metrics`));
}

/**
 * A well-formed exposition for Prometheus: each family has one HELP and one TYPE line, and its
 * samples follow them without another family in between. Returns the problems found.
 */
export function expositionProblems(text: string): string[] {
  const problems: string[] = [];
  const help = new Set<string>();
  const type = new Map<string, string>();
  const closed = new Set<string>();
  let current = '';
  for (const line of text.split('\n')) {
    if (!line) continue;
    const h = /^# (HELP|TYPE) (\S+)(?: (\S+))?/.exec(line);
    if (h) {
      const [, kind, name] = h;
      if (kind === 'HELP') {
        if (help.has(name!)) problems.push(`second HELP for ${name}`);
        help.add(name!);
      } else {
        if (type.has(name!)) problems.push(`second TYPE for ${name}`);
        type.set(name!, h[3]!);
      }
      if (current !== name) {
        if (current) closed.add(current);
        if (closed.has(name!)) problems.push(`${name} split in two`);
        current = name!;
      }
      continue;
    }
    const name = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line)![1]!;
    const family = type.get(current) === 'histogram' || type.get(current) === 'summary' ? name.replace(/_(bucket|sum|count)$/, '') : name;
    if (family !== current) problems.push(`sample ${name} outside its family (in ${current})`);
  }
  return problems;
}

/** A deployment as the admin port's /routes reports it: its state and the reasons it is degraded or rejected. */
export async function routesReport(adminUrl: string, name: string): Promise<{ state: string; reasons: string[] }> {
  const routes = await getJson<{ deployments: { name: string; state: string; reasons: string[] }[] }>(`${adminUrl}/routes`);
  return routes.deployments.find((d) => d.name === name)!;
}
