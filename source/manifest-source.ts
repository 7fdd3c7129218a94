/**
 * A DeploymentSource backed by manifests on disk: one YAML/JSON file, or a directory of them.
 *
 * Every scan re-reads all files (manifest directories are small) and diffs the result against what
 * was last emitted, so watcher events only need to say "something changed", never what. A file
 * that stops parsing keeps contributing its last good deployments until it is fixed or deleted:
 * a half-saved file must not take routes down.
 *
 * Whatever a file holds, it fails alone: one larger than `maxFileBytes` (default 16 MiB) or nested
 * deeper than `maxDepth` (default 100 levels of maps and lists) is refused before anything walks
 * it, and every other failure (a parse error, a shape no SeldonDeployment has, an exception) is
 * that file's problem, reported through `onProblem`, while its last good deployments stay and
 * every other file's changes are applied.
 */
import { watch, type Dirent, type FSWatcher } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { dirname, extname, resolve, sep } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { SeldonDeployment } from '../routing/seldon/deployment.js';
import { deploymentKey, type DeploymentSource, type SourceEvent, type SourceSink } from './source.js';

export interface ManifestSourceOptions {
  /** A manifest file, or a directory read recursively (`.yaml`, `.yml`, `.json`; dotfiles skipped). */
  path: string;
  /** Quiet time after the last file event before re-reading. */
  debounceMs?: number;
  /** Namespace given to SeldonDeployments that name none. */
  defaultNamespace?: string;
  /** Largest file read, in bytes (default 16 MiB); a larger one is a problem, its last good deployments kept. */
  maxFileBytes?: number;
  /** Deepest nesting of maps and lists a file may have (default 100); a deeper one is a problem, as above. */
  maxDepth?: number;
}

export const DEFAULT_MAX_FILE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_MAX_DEPTH = 100;

interface ReadLimits {
  readonly defaultNamespace: string;
  readonly maxFileBytes: number;
  readonly maxDepth: number;
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const SELDON_GROUP = 'machinelearning.seldon.io';

type ReadResult = { readonly kind: 'gone' } | { readonly kind: 'broken'; readonly message: string } | { readonly kind: 'ok'; readonly deployments: SeldonDeployment[]; readonly problems: string[] };

interface Emitted {
  readonly deployment: SeldonDeployment;
  readonly json: string;
  readonly file: string;
}

export class ManifestSource implements DeploymentSource {
  private readonly root: string;
  private readonly debounceMs: number;
  private readonly limits: ReadLimits;

  private sink: SourceSink | undefined;
  private stopped = false;
  /** Last good deployments per file (kept while the file is broken). */
  private files = new Map<string, SeldonDeployment[]>();
  private emitted = new Map<string, Emitted>();
  private problems = new Map<string, string>();
  private readonly watchers = new Map<string, FSWatcher>();
  private timer: NodeJS.Timeout | undefined;
  /** The scan in progress; scans never overlap. */
  private running: Promise<void> | undefined;
  private rescanAfterRunning = false;
  /**
   * What each file gave when it last read well, by its stat stamp: a change to one file re-reads
   * that file only (a directory of 10,000 deployments is not parsed again for each edit).
   */
  private readonly parsed = new Map<string, { readonly stamp: string; readonly result: ReadResult }>();
  private readonly jsonOf = new WeakMap<SeldonDeployment, string>();

  constructor(options: ManifestSourceOptions) {
    this.root = resolve(options.path);
    this.debounceMs = options.debounceMs ?? 100;
    this.limits = {
      defaultNamespace: options.defaultNamespace ?? 'default',
      maxFileBytes: options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES,
      maxDepth: options.maxDepth ?? DEFAULT_MAX_DEPTH,
    };
  }

  async start(sink: SourceSink): Promise<void> {
    if (this.sink || this.stopped) return;
    this.sink = sink;
    sink.onConnected?.(true);
    await this.runScan(true);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.running?.catch(() => undefined);
  }

  /** Trailing debounce: bursts of file events (an editor save, a `kubectl cp`) become one scan. */
  private schedule(): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.runScan(false).catch(warn);
    }, this.debounceMs);
  }

  private runScan(initial: boolean): Promise<void> {
    if (this.running) {
      this.rescanAfterRunning = true;
      return this.running;
    }
    const run = this.scan(initial).finally(() => {
      this.running = undefined;
      if (this.rescanAfterRunning && !this.stopped) {
        this.rescanAfterRunning = false;
        this.runScan(false).catch(warn);
      }
    });
    this.running = run;
    return run;
  }

  private async scan(initial: boolean): Promise<void> {
    const problems = new Map<string, string[]>();
    const addProblem = (where: string, message: string): void => {
      problems.set(where, [...(problems.get(where) ?? []), message]);
    };

    const listing = await this.list(addProblem);
    if (this.stopped) return;
    this.syncWatchers(listing.watchDirs, addProblem);

    const results = await Promise.all(listing.files.map((f) => this.read(f)));
    if (this.stopped) return;
    const listed = new Set(listing.files);
    for (const f of this.parsed.keys()) if (!listed.has(f)) this.parsed.delete(f);
    const files = new Map<string, SeldonDeployment[]>();
    listing.files.forEach((file, i) => {
      const result = results[i];
      if (!result || result.kind === 'gone') return;
      if (result.kind === 'broken') {
        addProblem(file, result.message);
        const previous = this.files.get(file);
        if (previous) files.set(file, previous);
        return;
      }
      files.set(file, result.deployments);
      for (const p of result.problems) addProblem(file, p);
    });
    // Files under a directory we could not list are unknown, not deleted: keep what they gave.
    for (const [file, previous] of this.files) {
      if (listing.unreadableDirs.some((d) => file.startsWith(d + sep))) files.set(file, previous);
    }
    this.files = files;

    // The lexically first file wins a duplicated key; the later one is told so.
    const next = new Map<string, Emitted>();
    for (const file of [...files.keys()].sort()) {
      for (const deployment of files.get(file) ?? []) {
        const key = deploymentKey(deployment);
        const first = next.get(key);
        if (first) {
          addProblem(file, `duplicate SeldonDeployment ${key}: already defined in ${first.file}; ignored here`);
          continue;
        }
        // Known to be bounded in depth (readManifest); an exception here is still this file's alone.
        let json = this.jsonOf.get(deployment);
        if (json === undefined) {
          try {
            json = JSON.stringify(deployment);
          } catch (err) {
            addProblem(file, `SeldonDeployment ${key}: ${errorMessage(err)}; skipped`);
            continue;
          }
          this.jsonOf.set(deployment, json);
        }
        next.set(key, { deployment, json, file });
      }
    }

    const events: SourceEvent[] = [];
    for (const [key, entry] of next) {
      if (this.emitted.get(key)?.json !== entry.json) events.push({ type: 'upsert', key, deployment: entry.deployment });
    }
    for (const key of this.emitted.keys()) if (!next.has(key)) events.push({ type: 'delete', key });

    // `stopped` is re-checked between calls: a sink may stop the source from inside a callback.
    const sink = this.sink;
    if (this.stopped || !sink) return;
    if (events.length > 0 || initial) sink.onEvents(events);
    this.emitted = next;
    if (!this.stopped) this.reportProblems(sink, problems);
    if (initial && !this.stopped) sink.onSynced();
  }

  /** A file as it reads now: from the last good read when its size, times and inode are the same. */
  private async read(file: string): Promise<ReadResult> {
    let stamp: string;
    try {
      const st = await stat(file);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
    } catch {
      this.parsed.delete(file);
      return readManifest(file, this.limits);
    }
    const cached = this.parsed.get(file);
    if (cached?.stamp === stamp) return cached.result;
    const result = await readManifest(file, this.limits);
    if (result.kind === 'ok') this.parsed.set(file, { stamp, result });
    else this.parsed.delete(file);
    return result;
  }

  /** Report only what changed since the last scan, so a persisting problem is not repeated. */
  private reportProblems(sink: SourceSink, current: Map<string, string[]>): void {
    const next = new Map([...current].map(([where, messages]) => [where, messages.join('; ')]));
    const previous = this.problems;
    this.problems = next;
    for (const [where, message] of next) if (previous.get(where) !== message) sink.onProblem(where, message);
    for (const where of previous.keys()) if (!next.has(where)) sink.onProblem(where, null);
  }

  /** The manifest files to read, the directories to watch, and directories that could not be listed. */
  private async list(addProblem: (where: string, message: string) => void): Promise<{
    files: string[];
    watchDirs: string[];
    unreadableDirs: string[];
  }> {
    const out = { files: [] as string[], watchDirs: [] as string[], unreadableDirs: [] as string[] };
    let isDirectory: boolean;
    try {
      isDirectory = (await stat(this.root)).isDirectory();
    } catch (err) {
      if (errorCode(err) === 'ENOENT') addProblem(this.root, 'path does not exist (watching for it to appear)');
      else {
        // Unknown state (e.g. EACCES): keep every file's last deployments rather than delete them.
        addProblem(this.root, errorMessage(err));
        out.unreadableDirs.push(dirname(this.root));
      }
      out.watchDirs.push(await nearestExistingDir(this.root));
      return out;
    }
    if (!isDirectory) {
      // Watch the parent, not the file: editors replace files by rename, and a mounted ConfigMap
      // swaps a `..data` symlink beside the file, so the file's own name may never show in events.
      out.files.push(this.root);
      out.watchDirs.push(dirname(this.root));
      return out;
    }
    const walk = async (dir: string): Promise<void> => {
      let entries: Dirent[];
      try {
        entries = await readdir(dir, { withFileTypes: true });
      } catch (err) {
        if (errorCode(err) === 'ENOENT') return; // removed while we looked: its files are gone
        addProblem(dir, errorMessage(err));
        out.unreadableDirs.push(dir);
        return;
      }
      out.watchDirs.push(dir);
      for (const entry of entries) {
        // Dot entries include a ConfigMap mount's `..data` copies, which would duplicate every file.
        if (entry.name.startsWith('.')) continue;
        const full = resolve(dir, entry.name);
        if (entry.isDirectory()) await walk(full);
        else if (MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) out.files.push(full);
      }
    };
    await walk(this.root);
    return out;
  }

  /** Watch exactly `dirs`; a newly watched directory gets a catch-up scan for writes made before. */
  private syncWatchers(dirs: readonly string[], addProblem: (where: string, message: string) => void): void {
    const wanted = new Set(dirs);
    for (const [dir, w] of this.watchers) {
      if (!wanted.has(dir)) {
        w.close();
        this.watchers.delete(dir);
      }
    }
    let added = false;
    for (const dir of wanted) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, () => this.schedule());
        w.on('error', () => {
          // The directory went away or the watch broke: drop it and let a rescan decide.
          w.close();
          if (this.watchers.get(dir) === w) this.watchers.delete(dir);
          this.schedule();
        });
        this.watchers.set(dir, w);
        added = true;
      } catch (err) {
        addProblem(dir, `cannot watch: ${errorMessage(err)}`);
      }
    }
    if (added) this.schedule();
  }
}

/** Read and parse one file into the SeldonDeployments it defines. Never throws: any failure is the file's. */
async function readManifest(file: string, limits: ReadLimits): Promise<ReadResult> {
  try {
    return await readManifestOrThrow(file, limits);
  } catch (err) {
    return { kind: 'broken', message: `could not be read: ${errorMessage(err)}` };
  }
}

async function readManifestOrThrow(file: string, limits: ReadLimits): Promise<ReadResult> {
  const { defaultNamespace, maxFileBytes, maxDepth } = limits;
  let bytes: Buffer;
  try {
    const size = (await stat(file)).size;
    if (size > maxFileBytes) return { kind: 'broken', message: `file is ${size} bytes, over the limit of ${maxFileBytes}` };
    bytes = await readFile(file);
  } catch (err) {
    const code = errorCode(err);
    if (code === 'ENOENT' || code === 'EISDIR') return { kind: 'gone' };
    return { kind: 'broken', message: errorMessage(err) };
  }
  // It may have grown between stat and read.
  if (bytes.length > maxFileBytes) return { kind: 'broken', message: `file is ${bytes.length} bytes, over the limit of ${maxFileBytes}` };
  const text = bytes.toString('utf8');
  const isJson = extname(file).toLowerCase() === '.json';
  // JSON's nesting is plain to count before parsing; YAML's (indentation) is measured on the result.
  if (isJson && jsonDepth(text) > maxDepth) return { kind: 'broken', message: `nested deeper than ${maxDepth} levels` };
  let values: unknown[];
  try {
    values = isJson ? [parseJson(text)] : parseYaml(text);
  } catch (err) {
    if (err instanceof RangeError) return { kind: 'broken', message: `could not be parsed: ${errorMessage(err)} (nesting is limited to ${maxDepth} levels)` };
    return { kind: 'broken', message: errorMessage(err) };
  }
  if (!withinDepth(values, maxDepth)) return { kind: 'broken', message: `nested deeper than ${maxDepth} levels` };
  const deployments: SeldonDeployment[] = [];
  const problems: string[] = [];
  // `implied` carries a typed list's item kind: the API's SeldonDeploymentList omits it on items.
  const visit = (value: unknown, implied?: { kind: string; apiVersion: unknown }): void => {
    if (Array.isArray(value)) return value.forEach((v) => visit(v, implied));
    if (!isRecord(value)) return;
    const obj = implied ? { apiVersion: implied.apiVersion, kind: implied.kind, ...value } : value;
    const { kind, apiVersion, items } = obj;
    if (typeof kind === 'string' && kind.endsWith('List') && Array.isArray(items)) {
      const itemKind = kind.slice(0, -'List'.length);
      return items.forEach((v) => visit(v, itemKind ? { kind: itemKind, apiVersion } : undefined));
    }
    if (!isSeldonDeployment(obj)) return;
    const which = `SeldonDeployment #${deployments.length + problems.length + 1}`;
    if (obj.metadata !== undefined && !isRecord(obj.metadata)) {
      problems.push(`${which}: metadata is not a map; skipped`);
      return;
    }
    const metadata = isRecord(obj.metadata) ? obj.metadata : {};
    if (typeof metadata.name !== 'string' || metadata.name === '') {
      problems.push(`${which} has no metadata.name; skipped`);
      return;
    }
    if (metadata.namespace !== undefined && metadata.namespace !== null && typeof metadata.namespace !== 'string') {
      problems.push(`SeldonDeployment ${metadata.name}: metadata.namespace is not a string; skipped`);
      return;
    }
    if (obj.spec !== undefined && obj.spec !== null && !isRecord(obj.spec)) {
      problems.push(`SeldonDeployment ${metadata.name}: spec is not a map; skipped`);
      return;
    }
    const namespace = typeof metadata.namespace === 'string' && metadata.namespace !== '' ? metadata.namespace : defaultNamespace;
    deployments.push({ ...obj, metadata: { ...metadata, namespace } } as SeldonDeployment);
  };
  for (const value of values) visit(value);
  return { kind: 'ok', deployments, problems };
}

function parseYaml(text: string): unknown[] {
  const values: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    const error = doc.errors[0];
    // The pretty message is "<what> at line L, column C:\n\n<excerpt>"; keep the first line.
    const first = error?.message.split('\n')[0]?.replace(/:$/, '');
    // The parser reports its own stack overflow (deep flow collections) as a document error.
    if (error && /call stack/i.test(error.message)) throw new RangeError(`YAML: ${first}`);
    if (error) throw new Error(`YAML: ${first}`);
    values.push(doc.toJS());
  }
  return values;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    // V8 reports a character offset; operators want a line.
    const at = /at position (\d+)/.exec(errorMessage(err));
    if (!at?.[1]) throw new Error(`JSON: ${errorMessage(err)}`, { cause: err });
    const before = text.slice(0, Number(at[1])).split('\n');
    throw new Error(`JSON: ${errorMessage(err)} (line ${before.length}, column ${(before.at(-1)?.length ?? 0) + 1})`, { cause: err });
  }
}

/** Deepest nesting of `[`/`{` in JSON text, outside strings; one pass, no recursion. */
function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92)
        i++; // backslash: skip the escaped character
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > max) max = depth;
    } else if (c === 93 || c === 125) depth--;
  }
  return max;
}

/** Whether no value nests maps and lists deeper than `limit`; an explicit stack, so any depth is safe to ask about. */
function withinDepth(root: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[root, 0]];
  // YAML anchors share one object between places (or make a cycle, which is infinitely deep): an
  // object is walked again only when reached deeper than before, so each at most `limit` times.
  const deepest = new Map<object, number>();
  while (stack.length > 0) {
    const [value, depth] = stack.pop()!;
    if (typeof value !== 'object' || value === null) continue;
    if (depth > limit) return false;
    if ((deepest.get(value) ?? -1) >= depth) continue;
    deepest.set(value, depth);
    for (const child of Array.isArray(value) ? value : Object.values(value)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return true;
}

function isSeldonDeployment(value: Record<string, unknown>): boolean {
  return value.kind === 'SeldonDeployment' && typeof value.apiVersion === 'string' && value.apiVersion.split('/')[0] === SELDON_GROUP;
}

async function nearestExistingDir(path: string): Promise<string> {
  let dir = dirname(path);
  for (;;) {
    try {
      if ((await stat(dir)).isDirectory()) return dir;
    } catch {
      // keep climbing
    }
    const up = dirname(dir);
    if (up === dir) return dir;
    dir = up;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function errorCode(err: unknown): string | undefined {
  return isRecord(err) && typeof err.code === 'string' ? err.code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** A sink that throws must not crash the process or stop the source; surface it as a warning. */
function warn(err: unknown): void {
  process.emitWarning(err instanceof Error ? err : new Error(String(err)), 'ManifestSourceWarning');
}
