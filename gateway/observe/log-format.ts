/**
 * The shape of every JSON log line the gateway writes (the main log and the access log), in the
 * form log pipelines read without a custom parser:
 *
 * - `level`: the level's name (`"info"`, `"warn"`), not pino's number (`30`): Loki, Elasticsearch
 *   and Datadog detect levels from a string field;
 * - `severity`: the same level in Google Cloud Logging's LogSeverity names (`INFO`, `WARNING`,
 *   `ERROR`, `CRITICAL`), which GKE's logging agent turns into the entry's severity;
 * - `time`: ISO 8601 in UTC (`2025-01-31T12:00:00.000Z`), not epoch milliseconds;
 * - `msg`: the message, as pino writes it.
 *
 * The main log's pino options spread `LOG_FORMAT`; the access log writes the same envelope itself
 * (access-log.ts builds its lines by hand), and test/gateway/observe/log-format.test.ts holds both to it.
 */
import { pino, type LoggerOptions } from 'pino';

/** pino's level names → Cloud Logging's LogSeverity (it has no TRACE or FATAL, and says WARNING). */
const SEVERITY: Readonly<Record<string, string>> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

export const LOG_FORMAT = {
  timestamp: pino.stdTimeFunctions.isoTime,
  formatters: {
    level: (label: string) => ({ level: label, severity: SEVERITY[label] ?? 'DEFAULT' }),
  },
} as const satisfies LoggerOptions;
