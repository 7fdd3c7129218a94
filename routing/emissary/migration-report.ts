/**
 * What the gateway makes of a cluster's Ambassador config, before the switch (`seldon-gateway
 * migrate-check`): per SeldonDeployment, each Mapping of its seldon.io/ambassador-config with every
 * key it sets, that key's class (routing/emissary/mapping-keys.ts through custom-config.ts `keyClass`, the
 * one table the compiler enforces) and why, and whether the Mapping would be dropped (the compiled
 * table's own reasons: a class-3 key, a bad value, a path outside the tenant's bounds); then the
 * ambassador Module's keys (routing/emissary/module.ts); last, every difference from Emissary that remains by
 * design (routing/emissary/design-differences.ts). Pure: the command reads the files.
 */
import { parseAllDocuments } from 'yaml';
import { customConfigAnnotation, effectiveAnnotations } from '../seldon/annotations.js';
import { flatten, keyClass } from './custom-config.js';
import { inspectModule, type ModuleKeyReport } from './module.js';
import { DESIGN_DIFFERENCES } from './design-differences.js';
import { readMappingIds, servedHere, SKIPPED_MAPPING } from './mapping-ids.js';
import type { UnreadResource } from './unread-kinds.js';
import type { SeldonDeployment } from '../seldon/deployment.js';
import type { RouteTable } from '../types.js';

export type KeyVerdict = 'honoured' | 'harmless' | 'drops';

export interface MappingCheck {
  readonly name: string;
  readonly keys: readonly { readonly key: string; readonly class: KeyVerdict; readonly why: string }[];
  /** Why the gateway drops it; null: it is served (or its deployment is another gateway's: `skipped`). */
  readonly dropped: string | null;
  /** Its deployment is not this gateway's (another ambassador-id): neither served nor dropped here. */
  readonly skipped?: string;
}

export interface DeploymentCheck {
  /** `namespace/name`. */
  readonly key: string;
  readonly state: string;
  readonly mappings: readonly MappingCheck[];
  /** The table's reasons for the deployment (warnings and refusals), each once. */
  readonly reasons: readonly string[];
}

export interface ModuleCheck {
  readonly keys: readonly ModuleKeyReport[];
  /** The file is not a Module at all. */
  readonly error: string | null;
}

const DROPPED = /^Mapping "(.*?)" dropped: (.*)$/;
type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Mapping documents of an annotation's text, flattened (v3alpha1's spec read as the annotation form). */
function mappingDocs(text: string): Obj[] {
  const out: Obj[] = [];
  const all = parseAllDocuments(text);
  // Not YAML at all: the table's reason says so; no Mapping to list.
  if (!Array.isArray(all)) return out;
  for (const d of all) {
    if (d.errors.length > 0) continue;
    const v = d.toJS();
    if (isObj(v) && v.kind === 'Mapping') out.push(flatten(v));
  }
  return out;
}

/** Each deployment of `table` with custom config, its Mappings' keys classified, and what the table dropped. */
export function checkDeployments(deployments: Iterable<SeldonDeployment>, table: RouteTable): DeploymentCheck[] {
  const out: DeploymentCheck[] = [];
  for (const d of deployments) {
    const key = `${d.metadata?.namespace || 'default'}/${d.metadata?.name ?? ''}`;
    const report = table.deployments.get(key);
    const reasons = report?.reasons ?? [];
    const text = customConfigAnnotation(effectiveAnnotations(d.metadata?.annotations, d.spec?.annotations));
    const drops = new Map<string, string>();
    const skips = new Map<string, string>();
    for (const r of reasons) {
      const m = DROPPED.exec(r);
      if (m) drops.set(m[1]!, m[2]!);
      const s = SKIPPED_MAPPING.exec(r);
      if (s) skips.set(s[1]!, s[2]!);
      // A Mapping its group refused (routing/table/route-group.ts): `<match>: Mapping <ns>/<name>/<mapping> refused: <why>`.
      const at = r.indexOf(`: Mapping ${key}/`);
      const end = r.indexOf(' refused: ', at);
      if (at >= 0 && end > at) drops.set(r.slice(at + `: Mapping ${key}/`.length, end), `refused by its group: ${r.slice(end + ' refused: '.length)}`);
    }
    const mappings: MappingCheck[] = [];
    if (text) {
      mappingDocs(text).forEach((doc, i) => {
        const name = typeof doc.name === 'string' ? doc.name : `#${i + 1}`;
        const keys = Object.entries(doc).map(([k, v]) => ({ key: k, ...keyClass(k, v) }));
        const rejected = report?.state === 'rejected' ? (reasons[0] ?? 'the deployment is rejected') : null;
        const ids = readMappingIds(doc.ambassador_id);
        const skipped =
          skips.get(name) ??
          (ids !== null && !('error' in ids) && !servedHere(ids, table.options.ambassadorId) ? `its ambassador_id ${JSON.stringify(ids)} does not name "${table.options.ambassadorId}"` : undefined) ??
          (report?.state === 'skipped' ? (reasons[0] ?? 'another gateway serves it') : undefined);
        if (skipped !== undefined) mappings.push({ name, keys, dropped: null, skipped });
        else mappings.push({ name, keys, dropped: drops.get(name) ?? rejected });
      });
    }
    out.push({ key, state: report?.state ?? 'unknown', mappings, reasons });
  }
  return out.sort((a, b) => a.key.localeCompare(b.key));
}

/** The Module file's keys, classified. */
export function checkModule(text: string, ambassadorId = 'default'): ModuleCheck {
  try {
    return { keys: inspectModule(text, ambassadorId).keys, error: null };
  } catch (e) {
    return { keys: [], error: (e as Error).message };
  }
}

/** Whether anything would be dropped or refused: migrate-check exits 1 then. */
export function anythingDropped(deployments: readonly DeploymentCheck[], module: ModuleCheck | undefined): boolean {
  const mapping = deployments.some((d) => d.state === 'rejected' || d.mappings.some((m) => m.skipped === undefined && (m.dropped !== null || m.keys.some((k) => k.class === 'drops'))));
  return mapping || (module !== undefined && (module.error !== null || module.keys.some((k) => k.class === 'refused')));
}

/** The report for a person: one block per deployment, one line per key. */
export function migrationText(deployments: readonly DeploymentCheck[], module: ModuleCheck | undefined, moduleFile?: string): string {
  const lines: string[] = [];
  const width = Math.max(8, ...deployments.flatMap((d) => d.mappings.flatMap((m) => m.keys.map((k) => k.key.length))), ...(module?.keys.map((k) => k.key.length) ?? []));
  for (const d of deployments) {
    lines.push(`SeldonDeployment ${d.key}: ${d.state}`);
    if (d.mappings.length === 0) lines.push('  no seldon.io/ambassador-config: generated routes only');
    for (const m of d.mappings) {
      lines.push(`  Mapping "${m.name}": ${m.skipped !== undefined ? `not this gateway's: ${m.skipped}` : m.dropped === null ? 'served' : `DROPPED: ${m.dropped}`}`);
      for (const k of m.keys) lines.push(`    ${k.key.padEnd(width)}  ${k.class.padEnd(8)}  ${k.why}`);
    }
    const others = d.reasons.filter((r) => !DROPPED.test(r) && !SKIPPED_MAPPING.test(r));
    for (const r of others) lines.push(`  - ${r}`);
  }
  if (module !== undefined) {
    lines.push(
      `ambassador Module${moduleFile ? ` (${moduleFile})` : ''}: ${module.error ?? (module.keys.some((k) => k.class === 'refused') ? 'REFUSED: the gateway would not start with it' : 'accepted')}`,
    );
    for (const k of module.keys) lines.push(`  ${k.key.padEnd(width)}  ${k.class.padEnd(8)}  ${k.why}`);
  }
  lines.push('', 'Differences from Emissary by design, whatever the config (docs/migrating-from-ambassador.md): read them before the switch.');
  for (const d of DESIGN_DIFFERENCES) lines.push(`  - ${d.topic}: Emissary ${d.emissary}; the gateway: ${d.gateway}`);
  const dropped = deployments.reduce((n, d) => n + d.mappings.filter((m) => m.dropped !== null).length, 0);
  const total = deployments.reduce((n, d) => n + d.mappings.length, 0);
  lines.push(
    '',
    `${deployments.length} SeldonDeployments, ${total} Mappings, ${dropped} would be dropped${module ? `; the Module ${module.error !== null || module.keys.some((k) => k.class === 'refused') ? 'would be refused' : 'is accepted'}` : ''}.`,
  );
  return lines.join('\n') + '\n';
}

/** The Ambassador resources among the manifests that the gateway would not read (routing/emissary/unread-kinds.ts): one line each. */
export function unreadText(unread: readonly UnreadResource[]): string {
  if (unread.length === 0) return '';
  const lines = ['', 'Ambassador resources the gateway does not read (their config would not be served):'];
  for (const u of unread) lines.push(`  NOT READ ${u.kind} ${u.name}: instead, ${u.instead}`);
  return lines.join('\n') + '\n';
}
