/** --log-sinks (gateway/config/log-sinks.ts): the file's entries checked at start; a bad one exits 2 naming the entry and field. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../gateway/config/parse.js';
import { SINK_DEFAULTS } from '../../../gateway/config/log-sinks.js';
import { refusal } from './refusal.js';

const dir = mkdtempSync(join(tmpdir(), 'sgw-sinks-'));
function file(text: string): string {
  const p = join(dir, `s${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(p, text);
  return p;
}
const config = (text: string, extra: string[] = []) => parseConfig('serve', ['--manifests', dir, '--log-sinks', file(text), ...extra], {});

describe('--log-sinks', () => {
  it('each type and its target, the tuning defaults, and the names routing may use', () => {
    const c = config(
      '- name: logger\n  type: cloudevents\n  url: http://broker-ingress.knative-eventing/seldon/default\n  timeout: 2s\n  concurrency: 4\n' +
        '- name: audit\n  type: redis-stream\n  stream: seldon-audit\n  maxLen: 5000\n' +
        '- name: sidecar\n  type: file\n  path: /var/log/seldon/events.jsonl\n  queueBytes: 8MiB\n',
      ['--redis-url', 'redis://127.0.0.1:6379'],
    );
    expect(c.logSinks.map((s) => [s.name, s.type, s.url ?? s.stream ?? s.path])).toEqual([
      ['logger', 'cloudevents', 'http://broker-ingress.knative-eventing/seldon/default'],
      ['audit', 'redis-stream', 'seldon-audit'],
      ['sidecar', 'file', '/var/log/seldon/events.jsonl'],
    ]);
    expect(c.logSinks[0]).toMatchObject({ timeoutMs: 2000, concurrency: 4, batch: SINK_DEFAULTS.batch, retryMinMs: 100, retryMaxMs: 10_000, queueBytes: 64 * 1024 * 1024, claimIdleMs: 30_000 });
    expect(c.logSinks[1]!.maxLen).toBe(5000);
    expect(c.logSinks[2]!.queueBytes).toBe(8 * 1024 * 1024);
    expect([...c.compile.logSinks!]).toEqual(['logger', 'audit', 'sidecar']);
    // Without the flag: no sinks, and every name an annotation gives is unknown.
    const none = parseConfig('serve', ['--manifests', dir], {});
    expect(none.logSinks).toEqual([]);
    expect(none.logSinksFile).toBeUndefined();
  });

  it.each([
    ['- name: x\n  type: kafka\n  topic: t\n', 'sink "x".type: "kafka" is not one of cloudevents, redis-stream, file'],
    ['- name: x\n  type: cloudevents\n', 'sink "x".url: undefined is not a URL'],
    // A secret in a URL never reaches an error (so neither the log nor the exit message).
    ['- name: x\n  type: cloudevents\n  url: ftp://user:secret@host/in\n', 'sink "x".url: "ftp://…@host/in" is not http(s)'],
    ['- name: x\n  type: cloudevents\n  url: user:secret@host\n', 'sink "x".url: "…@host" is not http(s)'],
    ['- name: x\n  type: cloudevents\n  url: http://user:secret@host/in\n', 'sink "x".url: a URL with credentials is not accepted'],
    [
      '- name: x\n  type: cloudevents\n  url: http://a\n  stream: s\n',
      'sink "x": unknown field "stream" (a cloudevents sink takes url, timeout, concurrency, batch, retryMin, retryMax, queueBytes, maxLen, claimIdle)',
    ],
    ['- name: x\n  type: cloudevents\n  url: http://a\n  timeout: 5\n', 'sink "x".timeout: 5 is not a duration of at least 1 ms like 500ms or 5s'],
    ['- name: x\n  type: file\n  path: /a\n  queueBytes: 10\n', 'sink "x".queueBytes: 10 is not a size of at least 1KiB like 64MiB'],
    ['- name: x\n  type: file\n  path: /a\n  batch: 0\n', 'sink "x".batch: 0 is not a whole number from 1 to 10000'],
    ['- name: x\n  type: file\n  path: /a\n- name: x\n  type: file\n  path: /b\n', 'sink "x": named twice'],
    ['- name: X Y\n  type: file\n  path: /a\n', 'sinks[0].name: "X Y" is not a name'],
    ['- name: x\n  type: cloudevents\n  url: http://a\n  retryMin: 2s\n  retryMax: 1s\n', 'sink "x".retryMax: "1s" is not a duration of at least 2000 ms'],
  ])('refused: %j', (text, words) => {
    expect(refusal(() => config(text))).toContain(words);
  });
});
