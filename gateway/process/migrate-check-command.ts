/**
 * `seldon-gateway migrate-check [FILE|-] [--ambassador-module FILE] [routes' options]`: what the
 * gateway would make of a cluster's Ambassador config before the switch. Reads what `kubectl get
 * sdep -A -o yaml` prints (a List, a file or directory of manifests; stdin when no file is named),
 * compiles it as `serve` would (the same options: --custom-config-scope, --custom-config-prefixes,
 * --ambassador-id, …) and prints per SeldonDeployment each Mapping's keys with their class and why
 * (routing/emissary/migration-report.ts), then the Module's keys. Exit 0: everything is served as written;
 * 1: a Mapping would be dropped, a deployment rejected, or the Module refused; 2: usage error.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { moduleCompile } from '../config/ambassador-module.js';
import { parseConfig } from '../config/parse.js';
import { UsageError } from '../config/values.js';
import { parseAmbassadorModule } from '../../routing/emissary/module.js';
import { anythingDropped, checkDeployments, checkModule, migrationText, unreadText, type ModuleCheck } from '../../routing/emissary/migration-report.js';
import { unreadResources, type UnreadResource } from '../../routing/emissary/unread-kinds.js';
import { DESIGN_DIFFERENCES } from '../../routing/emissary/design-differences.js';
import { buildTable } from '../../routing/table/builder.js';
import { readManifests } from './routes-command.js';

export const MIGRATE_CHECK_HELP = `Usage: seldon-gateway migrate-check [FILE|-] [--ambassador-module FILE] [options of routes]

Print what the gateway would make of a cluster's Ambassador config, before the switch: per
SeldonDeployment, every key of each seldon.io/ambassador-config Mapping with its class (honoured,
harmless, or drops: the Mapping is dropped) and why; then every key of the ambassador Module.
FILE is what 'kubectl get sdep -A -o yaml' prints (or a directory of manifests); without FILE, or
with '-', it is read from stdin. The options of 'seldon-gateway routes' apply (--custom-config-scope,
--custom-config-prefixes, --ambassador-id, ...).
Exit 0: everything is served as written; 1: a Mapping would be dropped, a SeldonDeployment rejected,
or the Module refused; 2: usage error.
`;

/** The dump's path, the Module's path, and the rest of argv (routes' options). */
function split(argv: readonly string[]): { input: string | undefined; module: string | undefined; rest: string[] } {
  let input: string | undefined;
  let module: string | undefined;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--ambassador-module') module = argv[++i];
    else if (a.startsWith('--ambassador-module=')) module = a.slice('--ambassador-module='.length);
    else if (a === '-' || !a.startsWith('-')) {
      if (input !== undefined) throw new UsageError(`migrate-check reads one file, not "${input}" and "${a}"`);
      input = a;
    } else {
      rest.push(a);
      // A value that follows its option is the option's (routes' options all take one but --json and --help).
      if (!['--json', '--help', '-h'].includes(a) && !a.includes('=') && i + 1 < argv.length) rest.push(argv[++i]!);
    }
  }
  if (module === '') throw new UsageError('--ambassador-module needs a file');
  return { input, module, rest };
}

export async function migrateCheckCommand(argv: string[], stdin: () => string = () => readFileSync(0, 'utf8')): Promise<number> {
  const { input, module: moduleFile, rest } = split(argv);
  const config = parseConfig('routes', rest);
  if (config.help) {
    process.stdout.write(MIGRATE_CHECK_HELP);
    return 0;
  }
  const path = input === '-' ? undefined : (input ?? config.source.manifests);
  if (path !== undefined && !existsSync(path)) throw new UsageError(`${path}: no such file or directory`);
  let moduleCheck: ModuleCheck | undefined;
  let compile = config.compile;
  if (moduleFile !== undefined) {
    let text: string;
    try {
      text = readFileSync(moduleFile, 'utf8');
    } catch (e) {
      throw new UsageError(`--ambassador-module: cannot read ${moduleFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
    }
    moduleCheck = checkModule(text, compile.ambassadorId);
    // The Module's route defaults count (regex_max_size can drop a Mapping), when the gateway would take it.
    if (moduleCheck.error === null && !moduleCheck.keys.some((k) => k.class === 'refused'))
      compile = { ...compile, ...moduleCompile(config.module.base, parseAmbassadorModule(text, compile.ambassadorId)) };
  }
  // stdin goes through the manifest reader as a file of its own.
  const tmp = path === undefined ? mkdtempSync(join(tmpdir(), 'sgw-migrate-')) : undefined;
  try {
    if (tmp !== undefined) writeFileSync(join(tmp, 'stdin.yaml'), stdin());
    const file = path ?? join(tmp!, 'stdin.yaml');
    const { deployments, problems } = await readManifests(file);
    const table = buildTable(deployments.values(), compile);
    const checks = checkDeployments(deployments.values(), table);
    const unread = unreadIn(file);
    if (config.json)
      process.stdout.write(
        JSON.stringify({ deployments: checks, module: moduleCheck ?? null, unreadResources: unread, sourceProblems: Object.fromEntries(problems), differences: DESIGN_DIFFERENCES }, null, 2) + '\n',
      );
    else {
      process.stdout.write(migrationText(checks, moduleCheck, moduleFile) + unreadText(unread));
      for (const [where, message] of problems) process.stdout.write(`UNREADABLE ${where}: ${message}\n`);
    }
    return anythingDropped(checks, moduleCheck) || problems.size > 0 || unread.length > 0 ? 1 : 0;
  } finally {
    if (tmp !== undefined) rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * The Ambassador resources in `path` (a manifest file, or a directory read recursively as --manifests reads
 * it) that the gateway does not read; a file that is not YAML is the manifest reader's problem, skipped here.
 */
function unreadIn(path: string): UnreadResource[] {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.')) continue;
      if (e.isDirectory()) walk(join(dir, e.name));
      else if (['.yaml', '.yml', '.json'].includes(extname(e.name))) files.push(join(dir, e.name));
    }
  };
  if (statSync(path).isDirectory()) walk(path);
  else files.push(path);
  const values: unknown[] = [];
  for (const f of files) {
    try {
      const docs = parseAllDocuments(readFileSync(f, 'utf8'));
      if (Array.isArray(docs)) for (const d of docs) if (d.errors.length === 0) values.push(d.toJS());
    } catch {
      // Unreadable: readManifests reports it.
    }
  }
  return unreadResources(values);
}
