/**
 * What a structure keeps alive on V8's heap, measured in this process: the heap used after full
 * collections, before and after it is made. Nothing runs between the two (no await), so the difference
 * is what `make` left reachable (the returned value is held until the second measure).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

function settledHeap(): number {
  gc();
  gc();
  return v8.getHeapStatistics().used_heap_size;
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
