/**
 * Closed-loop load over HTTP/2 with h2load (nghttp2's client, C like wrk): `-c` connections, one stream in flight on
 * each (`-m 1`, the same closed loop as wrk's HTTP/1.1), cleartext with prior knowledge (h2c), POSTing a body from a
 * file with the headers given (gRPC: a length-prefixed message with `content-type: application/grpc`). h2load prints
 * no percentiles: they come from its `--log-file` (one line per request: start, status, duration in µs). The same
 * LoadResult as lib/closed-loop.ts, so lib/measure.ts accounts either.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinned, runToEnd, which } from './children.js';
import type { LoadResult } from './closed-loop.js';
import { quantile } from './report.js';

export const h2loadBinary = (): string | null => which('h2load');

export class H2Load {
  private readonly bodyFile: string;
  private readonly logFile: string;

  /** `h2load`: its path. `headers`: extra request fields ("name: value"). `dir`: where the body and the request log go. */
  constructor(
    private readonly h2load: string,
    private readonly cpu: number,
    body: string | Buffer,
    dir: string,
    private readonly headers: readonly string[] = ['content-type: application/json'],
  ) {
    this.bodyFile = join(dir, 'body.h2');
    this.logFile = join(dir, 'h2load.log');
    writeFileSync(this.bodyFile, body);
  }

  /** `conns` connections for `seconds` against `url` (killed 20 s after that). */
  async run(url: string, conns: number, seconds: number): Promise<LoadResult> {
    const headers = this.headers.flatMap((h) => ['-H', h]);
    const command = [this.h2load, '-t1', `-c${conns}`, '-m1', '-D', String(seconds), '--warm-up-time', '10ms', '--log-file', this.logFile, '-d', this.bodyFile, ...headers, url];
    // A run that fails leaves no log: the last one's is not read for it.
    rmSync(this.logFile, { force: true });
    const r = await runToEnd(pinned(command, this.cpu), (seconds + 20) * 1000);
    // "requests: 100 total, 100 started, 100 done, 98 succeeded, 2 failed, 2 errored, 0 timeout"
    const m = /requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(r.stdout);
    // "status codes: 98 2xx, 0 3xx, 2 4xx, 0 5xx"
    const s = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(r.stdout);
    if (!m || !s) throw new Error(`h2load failed (${r.code}): ${r.stdout}\n${r.stderr}`);
    // The counts are of the -D window (h2load counts nothing without a warm-up: 10 ms of it); those in flight at its end are not done.
    const secs = seconds;
    const done = Number(m[2]);
    const ok2xx = Number(s[1]);
    const durations = (existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '')
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((f) => f.length >= 3 && f[1]!.startsWith('2'))
      .map((f) => Number(f[2]))
      .sort((a, b) => a - b);
    const socketErrors = Number(m[5]) + Number(m[6]);
    return {
      completed: done,
      seconds: secs,
      rps: ok2xx / secs,
      // Status counts include requests that ended after the window; what is not 2xx is counted as such.
      non2xx: Number(s[2]) + Number(s[3]) + Number(s[4]),
      socketErrors,
      errorDetail: socketErrors ? `errored ${m[5]} timeout ${m[6]}` : '',
      p50us: quantile(durations, 0.5),
      p99us: quantile(durations, 0.99),
    };
  }
}
