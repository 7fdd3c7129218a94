/**
 * `seldon-gateway routes -f <file-or-dir>`: compile manifests once and print the table, for a
 * person (a tree) or a program (`--json`, the admin /routes shape). Exit 0 when everything
 * compiled, 1 when a deployment was rejected or a file did not parse, 2 on usage errors.
 */
import { existsSync } from 'node:fs';
import { helpText } from '../config/help.js';
import { parseConfig } from '../config/parse.js';
import { UsageError } from '../config/values.js';
import { ManifestSource } from '../../source/manifest-source.js';
import type { SourceEvent } from '../../source/source.js';
import { tableJson, tableText } from '../../routing/table/describe.js';
import { buildTable } from '../../routing/table/builder.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';

export async function routesCommand(argv: string[]): Promise<number> {
  const config = parseConfig('routes', argv);
  if (config.help) {
    process.stdout.write(helpText('routes'));
    return 0;
  }
  if (!config.source.manifests) throw new UsageError('routes needs -f <file-or-dir>');
  // `serve` waits for a missing path to appear; `routes` reads once, so a missing one is a mistake.
  if (!existsSync(config.source.manifests)) throw new UsageError(`-f ${config.source.manifests}: no such file or directory`);
  const { deployments, problems } = await readManifests(config.source.manifests);
  const table = buildTable(deployments.values(), config.compile);
  if (config.json) {
    process.stdout.write(JSON.stringify({ ...tableJson(table), sourceProblems: Object.fromEntries(problems) }, null, 2) + '\n');
  } else {
    process.stdout.write(tableText(table));
    for (const [where, message] of problems) process.stdout.write(`  UNREADABLE ${where}\n            - ${message}\n`);
  }
  const rejected = [...table.deployments.values()].some((r) => r.state === 'rejected');
  return rejected || problems.size > 0 ? 1 : 0;
}

/** Every SeldonDeployment in a file or directory of manifests (Lists included), read once, and the files that did not parse. */
export async function readManifests(path: string): Promise<{ deployments: Map<string, SeldonDeployment>; problems: Map<string, string> }> {
  const deployments = new Map<string, SeldonDeployment>();
  const problems = new Map<string, string>();
  const source = new ManifestSource({ path });
  await new Promise<void>((resolve) => {
    void source.start({
      onEvents: (events: readonly SourceEvent[]) => {
        for (const e of events) {
          if (e.type === 'upsert') deployments.set(e.key, e.deployment);
          else deployments.delete(e.key);
        }
      },
      onSynced: resolve,
      onProblem: (where, message) => {
        if (message === null) problems.delete(where);
        else problems.set(where, message);
      },
    });
  });
  await source.stop();
  return { deployments, problems };
}
