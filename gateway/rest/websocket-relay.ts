/**
 * Upgrades on a custom Mapping's route with `allow_upgrade: [websocket]` (or `use_websocket:
 * true`), over HTTP/1.1 (docs/routing.md "WebSocket upgrades"). Node's HTTP/1.1 server asks `should`
 * of every request that asks for an upgrade (the lane leaves such requests to it); this takes the
 * ones whose route allows upgrades and hands each to its exchange (rest/upgrade-exchange.ts), which
 * checks it at the route's gate, sends the model its head alone and tunnels only after the model's
 * 101 for the protocol offered.
 *
 * As Envoy decides (its route's `upgrade_configs`, compared with the whole Upgrade value): on such a
 * route an Upgrade that is not exactly one protocol the route allows (`websocket, h2c`) is refused
 * with 403 and the connection closed; `h2c` alone is dropped and the request served as a request
 * (Envoy takes no HTTP/1.1 → HTTP/2 upgrades). Every other route serves an upgrade request as a
 * request, its hop-by-hop Upgrade dropped; so do redirect Mappings and TLS upstreams here.
 */
import { validHost } from '../../routing/values/host.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { match, headerGetter } from '../../routing/table/match.js';
import type { Backend } from '../../routing/types.js';
import type { NodeRequest } from '../edge/node-exchange.js';
import { UpgradeExchange, type TakenUpgrade, type WebSocketDeps } from './upgrade-exchange.js';

/** What `should` decided, carried by the request to the 'upgrade' listener (nothing kept elsewhere). */
const TAKEN = Symbol('upgrade route');
type Carrying = IncomingMessage & { [TAKEN]?: TakenUpgrade };

export class WebSocketRelay {
  constructor(private readonly d: WebSocketDeps) {}

  /** Node's `shouldUpgradeCallback`: the route allows upgrades (the decision rides on the request). */
  readonly should = (req: IncomingMessage): boolean => {
    const asked = req.headers.upgrade;
    // An invalid Host is never relayed: served as a request, edge/refusals.ts answers it 400.
    if (asked === undefined || !validHost(req.headers.host ?? '')) return false;
    const since = performance.now();
    const table = this.d.state.current;
    const routed = match(table, { kind: 'rest', method: req.method ?? 'GET', path: req.url ?? '/', host: req.headers.host ?? '', header: headerGetter(req.headers) }, this.d.picker, this.d.eligible);
    if (!routed.ok || !upgrades(routed.backend)) return false;
    const protocol = asked.trim().toLowerCase();
    if (protocol === 'h2c') return false;
    (req as Carrying)[TAKEN] = { routed, table, since, protocol: routed.backend.mapping!.upgrades.includes(protocol) ? protocol : null };
    return true;
  };

  /** Node's 'upgrade' listener: the request `should` took; `head`, what the client sent after its head. */
  readonly upgrade = (req: IncomingMessage, client: Socket, head: Buffer): void => {
    // Nothing more is read from the client until the model's 101 (what Node read already is `head`).
    client.pause();
    const taken = (req as Carrying)[TAKEN];
    if (taken === undefined) {
      client.destroy();
      return;
    }
    const exchange = new UpgradeExchange(this.d, req as NodeRequest, client, head, taken);
    // Pipelined behind requests still being answered (Node's server emits the upgrade at once): it
    // starts once their answers are out, so that its answer never comes before or inside theirs.
    const start = (): void => {
      if (client.destroyed) return;
      const pending = (client as { _httpMessage?: ServerResponse | null })._httpMessage;
      if (pending != null) pending.once('finish', start);
      else exchange.start();
    };
    start();
  };
}

/** Whether a route relays upgrades: a Mapping's that allows some, neither a redirect nor to a TLS upstream. */
function upgrades(b: Backend): boolean {
  const m = b.mapping;
  return m !== null && m.upgrades.length > 0 && m.redirect === null && !b.upstream.tls && m.tlsContext === null;
}
