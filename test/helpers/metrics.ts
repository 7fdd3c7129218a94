/** Reading one sample from a gateway's admin `/metrics`. (observability-helpers.ts parses the whole exposition.) */
import { request } from 'undici';

/**
 * The value of the sample printed as `series` (`name` or `name{labels}` exactly as exposed) at
 * `adminUrl`/metrics; 0 when there is no such line (a labelled counter not yet counted).
 */
export async function metric(adminUrl: string, series: string): Promise<number> {
  const text = await (await request(`${adminUrl}/metrics`)).body.text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}
