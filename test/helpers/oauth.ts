/** Credentials for the OAuth front end in tests. */
import { request } from 'undici';
import { expect } from 'vitest';

/** An HTTP Basic `Authorization` value. */
export const basic = (id: string, secret: string): string => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;

/** A bearer `Authorization` header. */
export const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

/** A token from the gateway at `gatewayUrl` (client credentials grant); the issue must succeed. */
export async function fetchToken(gatewayUrl: string, id: string, secret: string): Promise<string> {
  const r = await request(`${gatewayUrl}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
    body: 'grant_type=client_credentials',
  });
  const text = await r.body.text();
  expect(r.statusCode, text).toBe(200);
  return (JSON.parse(text) as { access_token: string }).access_token;
}
