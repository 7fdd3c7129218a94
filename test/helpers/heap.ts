/**
 * What a structure keeps alive on V8's heap, measured in this process: the objects on the heap after
 * full collections (code left out), before and after it is made. Nothing runs between the two (no await), so the difference
 * is what `make` left reachable (the returned value is held until the second measure).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Where code lives (bytecode, feedback, optimised code): V8 makes and drops it as functions warm up, whatever they keep. */
const CODE_SPACES = new Set(['code_space', 'code_large_object_space', 'trusted_space', 'trusted_large_object_space', 'shared_trusted_space', 'shared_trusted_large_object_space']);

/** Bytes of objects on the heap after full collections, code left out. */
function settledHeap(): number {
  gc();
  gc();
  let used = 0;
  for (const s of v8.getHeapSpaceStatistics()) if (!CODE_SPACES.has(s.space_name)) used += s.space_used_size;
  return used;
}

/** Bytes `make`'s result keeps alive. */
export function retainedBytes(make: () => unknown): number {
  const before = settledHeap();
  const kept = make();
  const after = settledHeap();
  // Read after the measure, so the result is alive through it.
  if (kept === undefined) throw new Error('retainedBytes: make() returned nothing to measure');
  return after - before;
}
