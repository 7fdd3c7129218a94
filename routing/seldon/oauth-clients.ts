/**
 * The OAuth clients a SeldonDeployment registers from `spec.oauth_key` / `spec.oauth_secret`
 * (docs/routing.md#oauth-front-end): spec fields, not annotations; the table settles collisions.
 */
import type { SeldonDeployment } from './deployment.js';
import type { CompileOptions, OAuthClient } from '../types.js';

/**
 * The clients an SDep registers (docs/routing.md#oauth-front-end): `<oauth_key><namespace>`, plus the bare key in
 * single-namespace mode, when both `spec.oauth_key` and `spec.oauth_secret` are non-empty strings.
 */
export function oauthClients(d: SeldonDeployment, ns: string, name: string, opts: CompileOptions): { clients: OAuthClient[]; warnings: string[] } {
  const key: unknown = d.spec?.oauth_key;
  const secret: unknown = d.spec?.oauth_secret;
  const set = (v: unknown): boolean => v !== undefined && v !== null && v !== '';
  if (!set(key) && !set(secret)) return { clients: [], warnings: [] };
  if (typeof key !== 'string' || typeof secret !== 'string' || !set(key) || !set(secret)) {
    const what = !set(key)
      ? 'spec.oauth_secret is set without spec.oauth_key'
      : !set(secret)
        ? 'spec.oauth_key is set without spec.oauth_secret'
        : 'spec.oauth_key and spec.oauth_secret must be strings';
    return { clients: [], warnings: [`${what}: no OAuth client is registered`] };
  }
  const uid: unknown = d.metadata?.uid;
  const id = typeof uid === 'string' && uid !== '' ? { uid } : {};
  const clients: OAuthClient[] = [{ clientId: `${key}${ns}`, namespace: ns, deployment: name, secret, ...id }];
  if (opts.singleNamespace) clients.push({ clientId: key, namespace: ns, deployment: name, secret, ...id });
  return { clients, warnings: [] };
}
