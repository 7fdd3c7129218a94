#!/usr/bin/env node
/**
 * `seldon-gateway [serve|routes|migrate-check] [options]`: the command line. `serve` (the default) runs the
 * gateway; `routes` prints what the gateway would make of a set of manifests; `migrate-check` what it
 * would make of a cluster's Ambassador config (every Mapping key and Module key, classified).
 */
import cluster from 'node:cluster';
import { readFileSync } from 'node:fs';
import { runPrimary, runWorker } from './process/cluster.js';
import { COMMANDS, helpText, overviewText } from './config/help.js';
import { unknownCommand } from './config/hints.js';
import { parseConfig } from './config/parse.js';
import { UsageError } from './config/values.js';
import { createLogger } from './process/logger.js';
import { TlsFileError, checkTlsFiles } from './edge/tls-files.js';
import { shareTicketKeys } from './edge/tls-ticket-keys.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** Set once `serve` starts processes: a failure then must end them, not leave them up and never ready. */
let serving = false;

async function serve(argv: string[]): Promise<void> {
  const config = parseConfig('serve', argv);
  if (config.help) {
    process.stdout.write(helpText('serve'));
    return;
  }
  if (config.tls && cluster.isPrimary) {
    // Bad certificate files are a usage error (exit 2) before any worker starts; workers share one ticket key.
    try {
      checkTlsFiles(config.tls);
    } catch (err) {
      throw err instanceof TlsFileError ? new UsageError(err.message) : err;
    }
    shareTicketKeys();
  }
  const log = createLogger(config.process.logLevel);
  serving = true;
  // Traffic is served by workers (even one), so their V8 flags can be set for the hot path.
  if (cluster.isWorker) return runWorker(config, log);
  return runPrimary(config, log);
}

async function main(): Promise<number | undefined> {
  const [first, ...rest] = process.argv.slice(2);
  if (first === '--version' || first === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (first === 'help' || ((first === '--help' || first === '-h') && rest.length === 0)) {
    process.stdout.write(overviewText());
    return 0;
  }
  if (first === 'routes') return (await import('./process/routes-command.js')).routesCommand(rest);
  if (first === 'migrate-check') return (await import('./process/migrate-check-command.js')).migrateCheckCommand(rest);
  if (first === 'serve') await serve(rest);
  else if (first === undefined || first.startsWith('-')) await serve(process.argv.slice(2));
  else throw new UsageError(unknownCommand(first, [...Object.keys(COMMANDS), 'help']));
  return undefined;
}

main().then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`seldon-gateway: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`seldon-gateway: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
      // Workers, listeners or a source may be running: they would keep a broken process alive.
      if (serving) process.exit(1);
    }
  },
);
