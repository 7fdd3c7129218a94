/**
 * The fuzzers find what they are for: five framing defects, each planted in a scratch copy of the
 * gateway's source (a temporary directory, its node_modules the project's), each found by the
 * differential fuzzer of its side within 10,000 cases of a fixed seed, with the class of divergence
 * it is. A plant whose text is no longer in the source fails here, so the list cannot rot.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startGatewayUnderTest, THIS_TREE } from '../../fuzz/gateway-under-test.js';
import { startModel } from '../../fuzz/model.js';
import { fuzzRequests } from '../../fuzz/request-fuzz.js';
import { fuzzResponses, responder } from '../../fuzz/response-fuzz.js';
import type { RunResult } from '../../fuzz/fuzz-run.js';

interface Plant {
  readonly defect: string;
  readonly side: 'request' | 'response';
  /** In a file: this text, replaced by that. */
  readonly edits: [file: string, from: string, to: string][];
  /** The classes of divergence that find it. */
  readonly kinds: string[];
}

const PLANTS: Plant[] = [
  {
    defect: 'a Content-Length list taken as its first value (the lane reads `2, 2` as 2)',
    side: 'request',
    edits: [['gateway/edge/http1-request.ts', 'length = lengthDigits(buf, vs, ve);', 'length = /^\\d{1,15}(?:[ \\t]*,.*)?$/.test(latin1(buf, vs, ve)) ? parseInt(latin1(buf, vs, ve), 10) : -1;']],
    kinds: ['lenient', 'framing'],
  },
  {
    defect: 'a chunk size read past 16 hex digits (the model answer side wraps it at 32 bits)',
    side: 'response',
    edits: [
      ['gateway/upstream/http1-response.ts', 'this.remaining = this.remaining * 16 + h;', 'this.remaining = (this.remaining * 16 + h) % 2 ** 32;'],
      ['gateway/upstream/http1-response.ts', "if (this.remaining > MAX_CHUNK_SIZE) throw new ResponseParseError('UPSTREAM_BAD_RESPONSE', 'chunk size too large');", ''],
    ],
    kinds: ['lenient'],
  },
  {
    defect: "a bare LF accepted as the end of a chunk size line (in a model's answer)",
    side: 'response',
    edits: [
      [
        'gateway/upstream/http1-response.ts',
        'if (c === 13) this.chunkState = Chunk.SizeLf;\n          else if (c === 59)',
        'if (c === 13) this.chunkState = Chunk.SizeLf;\n          else if (c === 10) {\n            this.chunkState = Chunk.SizeLf;\n            break;\n          } else if (c === 59)',
      ],
    ],
    kinds: ['lenient'],
  },
  {
    defect: "a 204's body kept (read by the upstream client and written by the lane)",
    side: 'response',
    edits: [
      ['gateway/upstream/http1-response.ts', 'const bodiless = this.noBody || status === 204 || status === 304;', 'const bodiless = this.noBody || status === 304;'],
      ['gateway/edge/lane-exchange.ts', 'const bodiless = status === 204 || status === 304 || (status >= 100 && status < 200);', 'const bodiless = status === 304 || (status >= 100 && status < 200);'],
    ],
    kinds: ['answer', 'framing'],
  },
  {
    defect: 'Transfer-Encoding forwarded beside the Content-Length of a re-framed body',
    side: 'request',
    edits: [
      ['gateway/edge/http-headers.ts', "  'trailer',\n  'transfer-encoding',\n  'upgrade',\n  'expect',", "  'trailer',\n  'upgrade',\n  'expect',"],
      ['gateway/upstream/request-head.ts', "lower === 'content-length' || lower === 'transfer-encoding' || lower === 'connection'", "lower === 'content-length' || lower === 'connection'"],
    ],
    kinds: ['framing'],
  },
];

/** A scratch copy of the source with `plant` in it. */
function plantIn(plant: Plant): string {
  const dir = mkdtempSync(join(tmpdir(), 'sgw-plant-'));
  for (const d of ['gateway', 'routing', 'source']) cpSync(join(THIS_TREE, d), join(dir, d), { recursive: true });
  cpSync(join(THIS_TREE, 'package.json'), join(dir, 'package.json'));
  symlinkSync(join(THIS_TREE, 'node_modules'), join(dir, 'node_modules'), 'dir');
  for (const [file, from, to] of plant.edits) {
    const path = join(dir, file);
    const text = readFileSync(path, 'utf8');
    if (!text.includes(from)) throw new Error(`the plant "${plant.defect}" no longer applies: ${file} has no ${JSON.stringify(from)}`);
    writeFileSync(path, text.replace(from, to));
  }
  return dir;
}

const SEED = 20261124;
const WITHIN = 10_000;

describe('planted defects: each found by the fuzzer within 10,000 cases', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  for (const plant of PLANTS) {
    it(`${plant.side} side: ${plant.defect}`, async () => {
      const tree = plantIn(plant);
      dirs.push(tree);
      const model = await startModel(plant.side === 'response' ? responder(SEED) : undefined);
      const gateway = await startGatewayUnderTest(model.port, { tree });
      let r: RunResult;
      try {
        const options = { seed: SEED, count: WITHIN, concurrency: 32, stopAfter: 1 };
        r = plant.side === 'request' ? await fuzzRequests(gateway, model, options) : await fuzzResponses(gateway, options);
      } finally {
        await gateway.close();
        await model.close();
      }
      const found = r.divergences[0];
      expect(found, `not found in ${r.cases} cases: ${JSON.stringify(r.tally)}`).toBeDefined();
      expect(plant.kinds, `${found!.kind}: ${found!.detail}`).toContain(found!.kind);
      console.log(`planted "${plant.defect}": found at case ${found!.replay} after ${r.cases} cases: ${found!.kind}: ${found!.detail}`);
    }, 300_000);
  }
});
