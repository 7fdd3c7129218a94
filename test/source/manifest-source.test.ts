/**
 * ManifestSource against real temp directories and real fs.watch: initial sync, diffs, broken
 * files, duplicates, defaults, debouncing and stop.
 */
import { mkdir, mkdtemp, rename, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { ManifestSource, type ManifestSourceOptions } from '../../source/manifest-source.js';
import type { SeldonDeployment } from '../../routing/seldon/deployment.js';
import { RecordingSink } from '../helpers/recording-sink.js';
import { sleep } from '../helpers/wait.js';

const API = 'machinelearning.seldon.io/v1';

function sdep(name: string, namespace?: string, traffic = 100): SeldonDeployment {
  return {
    apiVersion: API,
    kind: 'SeldonDeployment',
    metadata: namespace === undefined ? { name } : { name, namespace },
    spec: { predictors: [{ name: 'main', traffic, graph: { name: 'model', type: 'MODEL' } }] },
  };
}

function yamlDocs(...docs: unknown[]): string {
  return docs.map((d) => stringify(d)).join('---\n');
}

async function until(what: string, condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

let dir: string;
let sources: ManifestSource[] = [];
let barriers = 0;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'manifest-source-'));
});

afterEach(async () => {
  await Promise.all(sources.map((s) => s.stop()));
  sources = [];
  await rm(dir, { recursive: true, force: true });
});

async function start(options: Partial<ManifestSourceOptions> = {}): Promise<RecordingSink> {
  const sink = new RecordingSink();
  const source = new ManifestSource({ path: dir, debounceMs: 50, ...options });
  sources.push(source);
  await source.start(sink);
  return sink;
}

/** A source's own state (nothing else shows it): the directories it watches, a scan pending or running, the files as it last read them. */
interface Inside {
  readonly watchers: ReadonlyMap<string, unknown>;
  readonly timer: NodeJS.Timeout | undefined;
  readonly running: Promise<void> | undefined;
  readonly parsed: ReadonlyMap<string, { readonly stamp: string }>;
}
const inside = (source: ManifestSource | undefined): Inside => source as unknown as Inside;
const idle = (source: ManifestSource | undefined): boolean => inside(source).timer === undefined && inside(source).running === undefined;

/** Until a scan has read each file as it is now (ManifestSource.read's stamp) and no other is pending. */
async function scanned(source: ManifestSource | undefined, ...files: string[]): Promise<void> {
  const stamps = await Promise.all(
    files.map(async (f) => {
      const st = await stat(f);
      return `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    }),
  );
  await until(`a scan of ${files.join(', ')}`, () => files.every((f, i) => inside(source).parsed.get(f)?.stamp === stamps[i]) && idle(source));
}

/**
 * Write a fresh file and wait for its deployment: scans are serial and read every file, so once it
 * arrives every earlier change has been emitted. Returns the index of the barrier's batch.
 */
async function barrier(sink: RecordingSink, inDir = dir): Promise<number> {
  const name = `barrier-${++barriers}`;
  await writeFile(join(inDir, `${name}.yaml`), stringify(sdep(name, 'barrier')));
  await until(`barrier ${name}`, () => sink.state.has(`barrier/${name}`));
  return sink.batches.findIndex((b) => b.some((e) => e.key === `barrier/${name}`));
}

describe('ManifestSource initial sync', () => {
  it('reads multi-doc YAML, JSON and Lists from a directory tree in one batch, then syncs', async () => {
    await writeFile(
      join(dir, 'a.yaml'),
      yamlDocs(
        sdep('a', 'models'),
        { apiVersion: 'v1', kind: 'Service', metadata: { name: 'svc', namespace: 'models' } },
        { ...sdep('b', 'models'), apiVersion: 'machinelearning.seldon.io/v1alpha2' },
      ),
    );
    await writeFile(join(dir, 'c.json'), JSON.stringify(sdep('c', 'json-ns')));
    await mkdir(join(dir, 'sub'));
    await writeFile(
      join(dir, 'sub', 'list.yml'),
      stringify({
        apiVersion: 'v1',
        kind: 'List',
        items: [sdep('d', 'listed'), { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' } }],
      }),
    );
    // The API's typed list leaves kind/apiVersion off its items.
    const { apiVersion: _a, kind: _k, ...bare } = sdep('e', 'listed');
    await writeFile(join(dir, 'sub', 'typed.yaml'), stringify({ apiVersion: API, kind: 'SeldonDeploymentList', items: [bare] }));
    await writeFile(join(dir, '.hidden.yaml'), stringify(sdep('hidden', 'models')));
    await writeFile(join(dir, 'notes.txt'), stringify(sdep('txt', 'models')));
    await writeFile(join(dir, 'other-group.yaml'), stringify({ ...sdep('x', 'models'), apiVersion: 'example.com/v1' }));

    const sink = await start();

    expect(sink.calls).toEqual(['connected:true', 'events', 'synced']);
    expect(sink.batches).toHaveLength(1);
    expect(sink.batches[0]?.every((e) => e.type === 'upsert')).toBe(true);
    expect(sink.keys()).toEqual(['json-ns/c', 'listed/d', 'listed/e', 'models/a', 'models/b']);
    expect(sink.state.get('listed/e')?.kind).toBe('SeldonDeployment');
    expect(sink.problems).toEqual([]);

    // Nothing changed since: the next batch is the barrier's alone.
    expect(await barrier(sink)).toBe(1);
    expect(sink.calls.filter((c) => c === 'synced')).toHaveLength(1);
  });

  it('emits an empty batch and syncs for an empty directory', async () => {
    const sink = await start();
    expect(sink.calls).toEqual(['connected:true', 'events', 'synced']);
    expect(sink.batches).toEqual([[]]);
  });

  it('watches a single file, ignoring its siblings, and follows rename-over saves', async () => {
    const file = join(dir, 'one.yaml');
    await writeFile(file, stringify(sdep('one', 'ns')));
    await writeFile(join(dir, 'two.yaml'), stringify(sdep('two', 'ns')));
    const sink = await start({ path: file });
    expect(sink.keys()).toEqual(['ns/one']);

    await writeFile(join(dir, 'two.yaml'), stringify(sdep('two', 'ns', 10)));
    await writeFile(file, stringify(sdep('one', 'ns', 30)));
    await until('one at 30', () => sink.traffic('ns/one') === 30);

    // An editor's save: write a temp file, rename it over the original.
    await writeFile(join(dir, '.one.yaml.swp'), stringify(sdep('one', 'ns', 70)));
    await rename(join(dir, '.one.yaml.swp'), file);
    await until('one at 70', () => sink.traffic('ns/one') === 70);
    expect(sink.keys()).toEqual(['ns/one']);
  });

  it('reports a missing path, syncs empty, and picks the path up when it appears', async () => {
    const later = join(dir, 'later');
    const sink = await start({ path: later });
    expect(sink.calls).toEqual(['connected:true', 'events', 'problem', 'synced']);
    expect(sink.batches).toEqual([[]]);
    expect(sink.problemAt(later)).toMatch(/does not exist/);

    await mkdir(later);
    await writeFile(join(later, 'x.yaml'), stringify(sdep('x', 'ns')));
    await until('x to appear', () => sink.state.has('ns/x'));
    await until('problem cleared', () => sink.problemAt(later) === null);
  });

  it('finds a missing file whose parent directories appear later', async () => {
    const file = join(dir, 'p', 'q', 'm.yaml');
    const sink = await start({ path: file });
    expect(sink.problemAt(file)).toMatch(/does not exist/);
    const source = sources.at(-1);
    // Each level appears once the watcher has moved down to the one before.
    await mkdir(join(dir, 'p'));
    await until('a watch on p', () => inside(source).watchers.has(join(dir, 'p')));
    await mkdir(join(dir, 'p', 'q'));
    await until('a watch on p/q', () => inside(source).watchers.has(join(dir, 'p', 'q')));
    await writeFile(file, stringify(sdep('m', 'ns')));
    await until('m to appear', () => sink.state.has('ns/m'));
    expect(sink.problemAt(file)).toBeNull();
  });
});

describe('ManifestSource changes', () => {
  beforeEach(async () => {
    await writeFile(join(dir, 'a.yaml'), yamlDocs(sdep('a1', 'ns'), sdep('a2', 'ns')));
    await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns')));
  });

  it('a changed file yields one batch with only the changed key', async () => {
    const sink = await start();
    const before = sink.batches.length;
    await writeFile(join(dir, 'a.yaml'), yamlDocs(sdep('a1', 'ns'), sdep('a2', 'ns', 50)));
    await until('a2 at 50', () => sink.traffic('ns/a2') === 50);
    const end = await barrier(sink);

    const batches = sink.batches.slice(before, end);
    expect(batches).toHaveLength(1);
    expect(batches[0]?.map((e) => `${e.type} ${e.key}`)).toEqual(['upsert ns/a2']);
  });

  it('a rewrite with identical SeldonDeployments (or only other kinds changed) emits nothing', async () => {
    const sink = await start();
    const source = sources.at(-1);
    await until('the start-up catch-up scan', () => idle(source)); // so the rewrites below get scans of their own
    const before = sink.batches.length;
    await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns')));
    await writeFile(join(dir, 'a.yaml'), yamlDocs(sdep('a1', 'ns'), { apiVersion: 'v1', kind: 'Service', metadata: { name: 'new' } }, sdep('a2', 'ns')));
    await scanned(source, join(dir, 'b.yaml'), join(dir, 'a.yaml')); // those scans on their own, before the barrier's
    expect(await barrier(sink)).toBe(before);
  });

  it('an added file yields upserts for its deployments', async () => {
    const sink = await start();
    const before = sink.batches.length;
    await writeFile(join(dir, 'c.yaml'), stringify(sdep('c1', 'ns')));
    await until('c1', () => sink.state.has('ns/c1'));
    expect(
      sink.batches
        .slice(before)
        .flat()
        .map((e) => `${e.type} ${e.key}`),
    ).toEqual(['upsert ns/c1']);
  });

  it('a deleted file yields deletes for its deployments only', async () => {
    const sink = await start();
    const before = sink.batches.length;
    await unlink(join(dir, 'a.yaml'));
    await until('a1 and a2 gone', () => !sink.state.has('ns/a1') && !sink.state.has('ns/a2'));
    const end = await barrier(sink);
    const events = sink.batches
      .slice(before, end)
      .flat()
      .map((e) => `${e.type} ${e.key}`);
    expect(events.sort()).toEqual(['delete ns/a1', 'delete ns/a2']);
    expect(sink.keys()).toEqual(['barrier/barrier-' + barriers, 'ns/b1']);
  });

  it('a broken file keeps its deployments while others update, and recovers when fixed', async () => {
    const sink = await start();
    const a = join(dir, 'a.yaml');
    await writeFile(a, 'apiVersion: machinelearning.seldon.io/v1\nkind: SeldonDeployment\nmetadata: [oops\n  name: a1\n');
    await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns', 20)));
    await until('b1 at 20', () => sink.traffic('ns/b1') === 20);
    await until('problem on a.yaml', () => typeof sink.problemAt(a) === 'string');
    await barrier(sink);

    expect(sink.problemAt(a)).toMatch(/line \d+/);
    expect(sink.batches.flat().filter((e) => e.type === 'delete')).toEqual([]);
    expect(sink.state.has('ns/a1')).toBe(true);
    expect(sink.state.has('ns/a2')).toBe(true);

    await writeFile(a, stringify(sdep('a1', 'ns', 40)));
    await until('a1 at 40', () => sink.traffic('ns/a1') === 40);
    await until('problem cleared', () => sink.problemAt(a) === null);
    expect(sink.state.has('ns/a2')).toBe(false);
  });

  it('reports bad JSON with a line number', async () => {
    const file = join(dir, 'bad.json');
    await writeFile(file, '{\n  "kind": "SeldonDeployment",\n}\n');
    const sink = await start();
    expect(sink.problemAt(file)).toMatch(/JSON.*line 3/);
    expect(sink.keys()).toEqual(['ns/a1', 'ns/a2', 'ns/b1']);

    await writeFile(file, JSON.stringify(sdep('j', 'ns')));
    await until('j', () => sink.state.has('ns/j'));
    expect(sink.problemAt(file)).toBeNull();
  });

  it('coalesces a burst of 20 writes into few batches and ends in the final state', async () => {
    const sink = await start({ debounceMs: 100 });
    const before = sink.batches.length;
    for (let i = 1; i <= 20; i++) {
      await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns', i)));
      await sleep(3);
    }
    await until('b1 at 20', () => sink.traffic('ns/b1') === 20);
    const end = await barrier(sink);
    const batches = sink.batches.slice(before, end);
    expect(batches.length).toBeGreaterThan(0);
    expect(batches.length).toBeLessThan(5);
    expect(sink.keys()).toEqual(['barrier/barrier-' + barriers, 'ns/a1', 'ns/a2', 'ns/b1']);
  });

  it('stops calling the sink after stop()', async () => {
    const stopped = await start();
    const witness = await start();
    await sources[0]?.stop();
    const calls = stopped.calls.length;

    await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns', 5)));
    await until('witness sees b1 at 5', () => witness.traffic('ns/b1') === 5);
    // A full scan cycle later on the witness (same debounce): a scan the stopped one still had pending would have run.
    await barrier(witness);
    expect(stopped.calls.length).toBe(calls);
  });

  it('keeps going when the sink throws', async () => {
    const sink = await start();
    const throwing = sink.onEvents.bind(sink);
    let thrown = 0;
    sink.onEvents = (events) => {
      if (thrown++ === 0) throw new Error('sink failure');
      throwing(events);
    };
    await writeFile(join(dir, 'b.yaml'), stringify(sdep('b1', 'ns', 7)));
    await until('first batch refused', () => thrown > 0);
    // The refused change is sent again with the next one.
    await writeFile(join(dir, 'c.yaml'), stringify(sdep('c1', 'ns')));
    await until('c1', () => sink.state.has('ns/c1'));
    expect(sink.traffic('ns/b1')).toBe(7);
  });
});

describe('ManifestSource content rules', () => {
  it('the lexically first file wins a duplicated key; the later file gets a problem', async () => {
    await writeFile(join(dir, 'a.yaml'), stringify(sdep('dup', 'ns', 10)));
    await writeFile(join(dir, 'b.yaml'), stringify(sdep('dup', 'ns', 90)));
    const sink = await start();
    expect(sink.traffic('ns/dup')).toBe(10);
    expect(sink.problemAt(join(dir, 'b.yaml'))).toMatch(/duplicate.*ns\/dup.*a\.yaml/);
    expect(sink.problemAt(join(dir, 'a.yaml'))).toBeUndefined();

    // With the first gone, the second takes over and is no longer a duplicate.
    await unlink(join(dir, 'a.yaml'));
    await until('dup at 90', () => sink.traffic('ns/dup') === 90);
    await until('problem cleared', () => sink.problemAt(join(dir, 'b.yaml')) === null);
  });

  it('defaults a missing namespace and reports a SeldonDeployment without a name', async () => {
    const file = join(dir, 'a.yaml');
    const nameless = { apiVersion: API, kind: 'SeldonDeployment', metadata: { namespace: 'ns' } };
    await writeFile(file, yamlDocs(sdep('plain'), nameless, sdep('kept', 'ns')));
    const sink = await start({ defaultNamespace: 'team-x' });

    expect(sink.keys()).toEqual(['ns/kept', 'team-x/plain']);
    expect(sink.state.get('team-x/plain')?.metadata?.namespace).toBe('team-x');
    expect(sink.problemAt(file)).toMatch(/metadata\.name/);
  });
});

describe('ManifestSource limits: a file fails alone, whatever it holds', () => {
  const deepJson = (levels: number): string => '['.repeat(levels) + ']'.repeat(levels);

  it('a 5,000-level JSON file is a problem; every other file is applied and the source syncs', async () => {
    const deep = join(dir, 'deep.json');
    await writeFile(deep, deepJson(5000));
    await writeFile(join(dir, 'good.yaml'), stringify(sdep('good', 'ns')));
    const sink = await start();
    expect(sink.synced).toBe(true);
    expect(sink.keys()).toEqual(['ns/good']);
    expect(sink.problemAt(deep)).toMatch(/nested deeper than 100 levels/);
  });

  it('deep YAML (flow and block) and a deep JSON SeldonDeployment are problems too', async () => {
    const flow = join(dir, 'flow.yaml');
    const block = join(dir, 'block.yaml');
    const sdepDeep = join(dir, 'sdep.json');
    await writeFile(flow, deepJson(5000));
    // 120 levels of block maps: within any parser's reach, over the limit.
    await writeFile(block, Array.from({ length: 120 }, (_, i) => `${' '.repeat(i)}k${i}:`).join('\n') + ' x\n');
    let spec: unknown = 'leaf';
    for (let i = 0; i < 3000; i++) spec = { a: spec };
    await writeFile(sdepDeep, JSON.stringify({ ...sdep('deep', 'ns'), spec }));
    await writeFile(join(dir, 'good.yaml'), stringify(sdep('good', 'ns')));
    const sink = await start();
    expect(sink.keys()).toEqual(['ns/good']);
    for (const f of [flow, block, sdepDeep]) expect(sink.problemAt(f), f).toMatch(/nested|parse/);
  });

  it('within the limits, nesting is fine (100 levels)', async () => {
    const file = join(dir, 'ok.json');
    let spec: unknown = 'leaf';
    for (let i = 0; i < 97; i++) spec = { a: spec };
    await writeFile(file, JSON.stringify({ ...sdep('ok', 'ns'), spec: { predictors: [{ name: 'main' }], x: spec } }));
    const sink = await start();
    expect(sink.keys()).toEqual(['ns/ok']);
    expect(sink.problemAt(file)).toBeUndefined();
  });

  it('a good file turned deep keeps its last good deployments while another file changes in the same scan; fixed, it recovers', async () => {
    const a = join(dir, 'a.json');
    const b = join(dir, 'b.yaml');
    await writeFile(a, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [sdep('a1', 'ns', 10)] }));
    await writeFile(b, stringify(sdep('b1', 'ns', 10)));
    const sink = await start();
    expect(sink.keys()).toEqual(['ns/a1', 'ns/b1']);

    await writeFile(a, deepJson(6000));
    await writeFile(b, stringify(sdep('b1', 'ns', 30)));
    await until('b1 at 30', () => sink.traffic('ns/b1') === 30);
    await until('problem on a.json', () => typeof sink.problemAt(a) === 'string');
    await barrier(sink);
    expect(sink.problemAt(a)).toMatch(/nested deeper than 100 levels/);
    expect(sink.traffic('ns/a1')).toBe(10);
    expect(sink.eventsFor('ns/a1').filter((e) => e.type === 'delete')).toEqual([]);

    await writeFile(a, JSON.stringify(sdep('a1', 'ns', 50)));
    await until('a1 at 50', () => sink.traffic('ns/a1') === 50);
    await until('problem cleared', () => sink.problemAt(a) === null);
  });

  it('a file over maxFileBytes is a problem, its last good deployments kept', async () => {
    const a = join(dir, 'a.yaml');
    await writeFile(a, stringify(sdep('a1', 'ns', 10)));
    const sink = await start({ maxFileBytes: 4096 });
    expect(sink.keys()).toEqual(['ns/a1']);
    await writeFile(a, stringify(sdep('a1', 'ns', 20)) + `# ${'x'.repeat(5000)}\n`);
    await until('problem on a.yaml', () => typeof sink.problemAt(a) === 'string');
    expect(sink.problemAt(a)).toMatch(/over the limit of 4096/);
    expect(sink.traffic('ns/a1')).toBe(10);
  });

  it('schema: a SeldonDeployment whose metadata, namespace or spec has the wrong shape is reported and skipped; the rest of its file is applied', async () => {
    const file = join(dir, 'a.yaml');
    await writeFile(
      file,
      yamlDocs(
        { apiVersion: API, kind: 'SeldonDeployment', metadata: 'oops' },
        { apiVersion: API, kind: 'SeldonDeployment', metadata: { name: 'n', namespace: 7 } },
        { apiVersion: API, kind: 'SeldonDeployment', metadata: { name: 's', namespace: 'ns' }, spec: 'oops' },
        sdep('kept', 'ns'),
      ),
    );
    const sink = await start();
    expect(sink.keys()).toEqual(['ns/kept']);
    const problem = sink.problemAt(file) ?? '';
    expect(problem).toMatch(/metadata is not a map/);
    expect(problem).toMatch(/metadata\.namespace is not a string/);
    expect(problem).toMatch(/spec is not a map/);
  });
});
