/** A REST prediction through a CLI gateway, as a client sends one: its status (0 when no answer came). */
import { request } from 'undici';
import type { CliGateway } from './cli.js';

/** POST a small SeldonMessage to `path` on a connection of its own (so a gateway's workers take turns). */
export async function predictionStatus(gw: CliGateway, path: string, headers: Record<string, string> = {}): Promise<number> {
  try {
    const r = await request(`http://127.0.0.1:${gw.port}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: '{"data":{"ndarray":[[1]]}}',
      reset: true,
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 0;
  }
}
