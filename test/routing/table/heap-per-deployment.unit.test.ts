/**
 * The heap a routing table keeps per deployment. A worker's table lives as long as the worker, and every
 * full collection marks all of it: with the large scenario's 1,000 deployments it was about 10 KB each
 * (31 MB of live heap against a Node HTTP/2 relay's 6-8 MB), and each mark-compact cost that much more
 * (load/README.md, "The heap per deployment"). The bounds below fail on that table: a Map or Set per key
 * with one member, a template-literal key kept as a tree of its parts, a list grown by `push`.
 */
import { describe, expect, it } from 'vitest';
import { TableBuilder } from '../../../routing/table/builder.js';
import { DEFAULT_COMPILE_OPTIONS, type RouteTable } from '../../../routing/types.js';
import type { SeldonDeployment } from '../../../routing/seldon/deployment.js';
import { generated } from '../../../load/lib/bench-table.js';
import { retainedBytes } from '../../helpers/heap.js';

const COUNT = 1000;
/** The large scenario's table (load/lib/bench-table.ts): canaries, shadows, header routes and explainers across 50 namespaces. */
const texts = Array.from({ length: COUNT }, (_, i) => JSON.stringify(generated(i)));
/** Parsed from JSON, as a worker gets each deployment from its primary. */
const parsed = (text: string): SeldonDeployment => JSON.parse(text) as SeldonDeployment;

const parsedKey = (i: number): string => {
  const d = parsed(texts[i]!);
  return `${d.metadata!.namespace!}/${d.metadata!.name!}`;
};

/** Was about 7,700 bytes (the builder's indexes, the groups, their specs and backends, and each deployment as given). */
const MAX_BYTES_PER_DEPLOYMENT = 7000;

/** A builder fed `count` deployments, and its table (a worker keeps both). */
function tableOf(count: number): { builder: TableBuilder; table: RouteTable } {
  const builder = new TableBuilder(DEFAULT_COMPILE_OPTIONS);
  for (let i = 0; i < count; i++) builder.upsert(parsed(texts[i]!));
  return { builder, table: builder.build() };
}

describe('the heap a table keeps per deployment', () => {
  // The code of compile, edit and removal and its feedback are made once per process, whatever the table: not counted.
  const warm = tableOf(50).builder;
  warm.upsert(parsed(texts[7]!));
  for (let i = 0; i < 50; i++) warm.remove(parsedKey(i));
  warm.build();

  it(`holds ${COUNT} deployments in at most ${MAX_BYTES_PER_DEPLOYMENT} bytes each`, () => {
    const perDeployment = retainedBytes(() => tableOf(COUNT)) / COUNT;
    expect(perDeployment, `${Math.round(perDeployment)} bytes per deployment`).toBeLessThan(MAX_BYTES_PER_DEPLOYMENT);
    // And it is a measure of something: the table is far from free.
    expect(perDeployment).toBeGreaterThan(1000);
  });

  it('is left with nothing more when they come and go again (every map keyed by a deployment, group or Service lets go)', () => {
    const builder = new TableBuilder(DEFAULT_COMPILE_OPTIONS);
    const comeAndGo = (): RouteTable => {
      for (let i = 0; i < COUNT; i++) builder.upsert(parsed(texts[i]!));
      builder.build();
      for (let i = 0; i < COUNT; i++) builder.remove(parsedKey(i));
      return builder.build();
    };
    // Once first: the maps keep the room they grew to. Six more rounds left 24-30 bytes per deployment in
    // all, measured; anything a round left behind would grow with the rounds.
    comeAndGo();
    const ROUNDS = 6;
    const perDeployment =
      retainedBytes(() => {
        for (let round = 0; round < ROUNDS; round++) comeAndGo();
        return builder;
      }) / COUNT;
    // A Set left per group each round would be about 300 bytes per deployment a round.
    expect(perDeployment, `${Math.round(perDeployment)} bytes per deployment after ${ROUNDS} rounds`).toBeLessThan(100);
  });

  it('stays within it after edits (each a new table, the indexes layered over the last)', () => {
    const perDeployment =
      retainedBytes(() => {
        const { builder } = tableOf(COUNT);
        let table: RouteTable | undefined;
        for (let e = 0; e < 100; e++) {
          builder.upsert(parsed(texts[(e * 7) % COUNT]!));
          table = builder.build();
        }
        return { builder, table };
      }) / COUNT;
    expect(perDeployment, `${Math.round(perDeployment)} bytes per deployment`).toBeLessThan(MAX_BYTES_PER_DEPLOYMENT);
  });
});
