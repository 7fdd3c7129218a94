/**
 * What the quick start writes to its terminal, so that a newcomer can read it: the gateway's log as
 * short lines (time, message, a few fields) instead of JSON, held back until the banner is out; the
 * access log of the requests the reader sends (the gateway's JSON lines, unchanged), without the
 * demo's own rollout and bandit traffic, which is counted instead and summarised in one line now
 * and then.
 */
import type { AccessSink } from '../gateway/observe/access-log.js';

/** The User-Agent of the demo's own requests: the access log leaves them out. */
export const DEMO_USER_AGENT = 'seldon-gateway-quickstart-demo';
const DEMO_MARK = `"user_agent":"${DEMO_USER_AGENT}"`;

const OMIT = new Set(['level', 'severity', 'time', 'service', 'msg', 'pid', 'hostname']);

/** `HH:MM:SS` of an ISO time (or of now). */
function clock(iso?: unknown): string {
  const d = typeof iso === 'string' ? new Date(iso) : new Date();
  return d.toISOString().slice(11, 19);
}

/** One JSON log line as `12:00:01 WARN message key=value …` (values shortened). */
export function shortLogLine(line: string): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.trimEnd();
  }
  const level = typeof o['level'] === 'string' && o['level'] !== 'info' ? `${o['level'].toUpperCase()} ` : '';
  const fields = Object.entries(o)
    .filter(([k, v]) => !OMIT.has(k) && v !== undefined && !(Array.isArray(v) && v.length === 0))
    .map(([k, v]) => {
      const s = typeof v === 'string' ? v : JSON.stringify(v);
      return `${k}=${s.length > 120 ? `${s.slice(0, 117)}...` : s}`;
    });
  return `${clock(o['time'])} ${level}${String(o['msg'] ?? '')}${fields.length ? `  ${fields.join(' ')}` : ''}`;
}

export class QuickstartTerminal {
  /** Log lines written before the banner, and whether it is out. */
  private held: string[] = [];
  private open = false;
  /** Demo requests since the last summary, by `namespace/deployment`. */
  private demo = new Map<string, number>();

  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  /** The gateway's logger writes here (a pino destination). */
  readonly log = {
    write: (line: string): void => {
      const short = shortLogLine(line);
      if (this.open) this.out.write(`${short}\n`);
      else this.held.push(short);
    },
  };

  /** The gateway's access log writes here: the reader's requests pass, the demo's are counted. */
  readonly access: AccessSink = {
    write: (line: string): void => {
      if (!line.includes(DEMO_MARK)) {
        this.out.write(line.endsWith('\n') ? line : `${line}\n`);
        return;
      }
      const m = /"namespace":"([^"]*)","deployment":"([^"]*)"/.exec(line);
      const key = m ? `${m[1]}/${m[2]}` : 'unrouted';
      this.demo.set(key, (this.demo.get(key) ?? 0) + 1);
    },
  };

  /** Write `text`, then let the log through; the start-up lines held so far are dropped unless they warn. */
  banner(text: string): void {
    this.out.write(text);
    for (const l of this.held) if (/^\S+ (WARN|ERROR|FATAL) /.test(l)) this.out.write(`${l}\n`);
    this.held = [];
    this.open = true;
  }

  /** One line of the demo's own, timed like the log's. */
  note(text: string): void {
    this.out.write(`${clock()} ${text}\n`);
  }

  /** One line: the demo requests since the last call, and `status` (the rollout's and bandit's state). */
  summary(seconds: number, status: string): void {
    const counts = [...this.demo].map(([k, n]) => `${n} to ${k}`).join(', ');
    this.demo = new Map();
    this.out.write(`${clock()} demo traffic in the last ${seconds} s (not in the access log): ${counts || 'none'}; ${status} (Enter: the curl lines again)\n`);
  }
}
