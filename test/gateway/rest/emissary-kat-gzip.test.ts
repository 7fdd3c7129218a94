/**
 * Emissary's t_gzip.py, ported: each `describe` is the KAT class, with its `ambassador` Module's `gzip` block
 * (routing/emissary/module-gzip.ts) and its Mapping of /target/ to a kat-server stand-in (whose answer is
 * text/plain, as Go sniffs kat-server's JSON). The KAT checks the answer's Content-Encoding; here also that
 * the client's bytes, decoded, are the model's bytes, and what the model received.
 */
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpBackend } from '../../fixtures/http-backend.js';
import { katGateway, katGet, katMapping, startKatBackend, type KatGateway } from '../../helpers/kat.js';

const SERVICE = 'gziptest-target.default:80';

/** One class: its Module's gzip block, the Mapping, the query with Accept-Encoding: gzip. */
function gzipClass(name: string, gzip: string[], expectGzip: boolean): void {
  describe(`${name} (t_gzip.py)`, () => {
    let model: HttpBackend;
    let kat: KatGateway;
    beforeAll(async () => {
      model = await startKatBackend('gziptest-target');
      kat = await katGateway({
        module: ['gzip:', ...gzip.map((l) => `  ${l}`)],
        mappings: [katMapping('gziptest-target', ['hostname: "*"', 'prefix: /target/', `service: ${SERVICE}`])],
        resolve: { [SERVICE]: model.port },
      });
    });
    afterAll(async () => {
      await kat?.stop();
      await model?.close();
    });

    it(`Accept-Encoding: gzip: 200, ${expectGzip ? 'Content-Encoding: gzip; the bytes decode to what the model sent' : 'no Content-Encoding; the bytes are what the model sent'}`, async () => {
      const r = await katGet(kat.gw.port, '/target/', { 'accept-encoding': 'gzip' });
      expect(r.status).toBe(200);
      expect(model.requests).toHaveLength(1);
      const got = model.requests[0]!;
      expect([got.method, got.url]).toEqual(['GET', '/']);
      expect(got.headers['accept-encoding']).toBe('gzip');
      const sent = JSON.parse((expectGzip ? gunzipSync(r.body) : r.body).toString('utf8')) as { backend: string; request: { url: string } };
      expect(sent.backend).toBe('gziptest-target');
      expect(sent.request.url).toBe('/');
      expect(r.headers['content-encoding']).toBe(expectGzip ? 'gzip' : undefined);
      if (expectGzip) {
        expect(r.headers['content-length']).toBeUndefined();
        expect(r.headers['vary']).toMatch(/accept-encoding/i);
      }
    });
  });
}

gzipClass('GzipMinimumConfigTest', ['enabled: true'], true);
gzipClass('GzipTest', ['min_content_length: 32', 'window_bits: 15', 'content_type:', '- text/plain'], true);
gzipClass('GzipNotSupportedContentTypeTest', ['min_content_length: 32', 'content_type:', '- application/json'], false);
