/**
 * The metadata cache's decisions and what a metadata answer is trusted for (routing/policies/model-metadata.ts):
 * a malformed or oversized declaration is a reason, never guessed past; the declared input is the
 * one the model declares, or among several the one named as the gateway names its input; fetches
 * are due once, then at the refresh, failures back off doubling to a bound and are logged once a run;
 * `retain` forgets what left the table.
 */
import { describe, expect, it } from 'vitest';
import { MAX_INPUTS, MetadataCache, declaredInput, metadataKey, metadataOwner, readModelMetadata } from '../../../routing/policies/model-metadata.js';

describe('readModelMetadata', () => {
  it('reads MLServer’s answer: each input’s name and datatype; one without a datatype declares nothing', () => {
    const doc = { name: 'iris', versions: [], platform: 'mlserver', inputs: [{ name: 'a', datatype: 'FP32', shape: [-1, 4] }, { name: 'b' }], outputs: [] };
    expect(readModelMetadata(doc)).toEqual({ ok: true, inputs: [{ name: 'a', datatype: 'FP32' }] });
    expect(readModelMetadata({ name: 'iris' })).toEqual({ ok: true, inputs: [] });
  });

  it('refuses with a reason what it cannot trust', () => {
    expect(readModelMetadata([1])).toEqual({ ok: false, reason: 'the metadata is not a JSON object' });
    expect(readModelMetadata({ inputs: 'x' })).toEqual({ ok: false, reason: 'its inputs are not a list' });
    expect(readModelMetadata({ inputs: [[[]]] })).toEqual({ ok: false, reason: 'inputs[0] has no name' });
    expect(readModelMetadata({ inputs: [{ name: 'a', datatype: 'FLOAT' }] })).toMatchObject({ ok: false, reason: expect.stringMatching(/"FLOAT" is not a v2 datatype/) });
    expect(readModelMetadata({ inputs: [{ name: 'x'.repeat(257), datatype: 'FP32' }] })).toMatchObject({ ok: false });
    const many = Array.from({ length: MAX_INPUTS + 1 }, (_, i) => ({ name: `i${i}`, datatype: 'FP32' }));
    expect(readModelMetadata({ inputs: many })).toEqual({ ok: false, reason: `it declares ${MAX_INPUTS + 1} inputs, more than ${MAX_INPUTS}` });
  });
});

describe('declaredInput', () => {
  const a = { name: 'a', datatype: 'FP32' } as const;
  const named = { name: 'input-0', datatype: 'INT32' } as const;
  it('the one declared input, whatever its name; among several the one named as the gateway names its input; else none', () => {
    expect(declaredInput([a], 'input-0')).toBe(a);
    expect(declaredInput([a, named], 'input-0')).toBe(named);
    expect(declaredInput([a, { name: 'b', datatype: 'FP64' }], 'input-0')).toBeNull();
    expect(declaredInput([], 'input-0')).toBeNull();
  });
});

describe('MetadataCache', () => {
  const timing = { refreshMs: 60_000, retryMinMs: 1_000, retryMaxMs: 8_000 };
  const key = metadataKey('m/d/main', 'iris', '');
  const owner = metadataOwner('m/d/main', 'iris', '');
  const fp32 = [{ name: 'x', datatype: 'FP32' }] as const;

  it('due once while in flight; the answer kept until the refresh', () => {
    const c = new MetadataCache(timing);
    expect(c.lookup(key)).toBeNull();
    expect(c.due(key, owner, 0)).toBe(true);
    expect(c.due(key, owner, 10)).toBe(false);
    c.answered(key, fp32, 100);
    expect(c.lookup(key)).toEqual(fp32);
    expect(c.due(key, owner, 60_099)).toBe(false);
    expect(c.due(key, owner, 60_100)).toBe(true);
    expect(c.lookup(key)).toEqual(fp32);
  });

  it('failures back off doubling to the bound, keep the last good answer, and only the first of a run is to be logged', () => {
    const c = new MetadataCache(timing);
    c.due(key, owner, 0);
    c.answered(key, fp32, 0);
    let t = 60_000;
    expect(c.due(key, owner, t)).toBe(true);
    const logged = [c.failed(key, t)];
    for (const wait of [1_000, 2_000, 4_000, 8_000, 8_000]) {
      expect(c.due(key, owner, t + wait - 1)).toBe(false);
      expect(c.due(key, owner, t + wait)).toBe(true);
      t += wait;
      logged.push(c.failed(key, t));
    }
    expect(logged).toEqual([true, false, false, false, false, false]);
    // A good answer ends the run: the next failure is logged again.
    expect(c.due(key, owner, t + 8_000)).toBe(true);
    c.answered(key, fp32, t + 8_000);
    expect(c.due(key, owner, t + 68_000)).toBe(true);
    expect(c.failed(key, t + 68_000)).toBe(true);
    expect(c.lookup(key)).toEqual(fp32);
  });

  it('retain forgets the models whose predictor or model name left; an answer arriving after is dropped', () => {
    const c = new MetadataCache(timing);
    const other = metadataKey('m/e/main', 'iris', '');
    c.due(key, owner, 0);
    c.due(other, metadataOwner('m/e/main', 'iris', ''), 0);
    expect(c.retain(new Set([owner]))).toBe(1);
    c.answered(other, fp32, 1);
    expect(c.lookup(other)).toBeNull();
    expect(c.size).toBe(1);
    expect(c.retain(new Set())).toBe(1);
    expect(c.size).toBe(0);
  });

  it('kept per version: each version its own entry; retain forgets a version its predictor asks no more, keeps the one it asks', () => {
    const c = new MetadataCache(timing);
    const v2 = metadataKey('m/d/main', 'iris', '2');
    const v3 = metadataKey('m/d/main', 'iris', '3');
    c.due(v2, metadataOwner('m/d/main', 'iris', '2'), 0);
    c.answered(v2, fp32, 0);
    expect(c.lookup(v3)).toBeNull();
    expect(c.lookup(key)).toBeNull();
    c.due(v3, metadataOwner('m/d/main', 'iris', '3'), 0);
    // The predictor asks version 3 now.
    expect(c.retain(new Set([metadataOwner('m/d/main', 'iris', '3')]))).toBe(1);
    expect(c.lookup(v2)).toBeNull();
    expect(c.due(v2, metadataOwner('m/d/main', 'iris', '2'), 1)).toBe(true);
    expect(c.size).toBe(2);
  });
});
