/**
 * Upgrades over HTTP/1.1 (docs/routing.md "WebSocket upgrades"). Node's HTTP/1.1 server asks `should`
 * of every request that asks for an upgrade (`Connection: upgrade` and an `Upgrade` field; the lane
 * leaves such requests to it); this takes every one that a route serves and hands it to its exchange
 * (rest/upgrade-exchange.ts), which refuses it or checks it at the route's gate, sends the model its
 * head alone and tunnels only after the model's 101 for the protocol offered.
 *
 * As Envoy decides (Emissary's listener has no `upgrade_configs`, so a route's own, from `allow_upgrade`
 * or `use_websocket`, is the only one; Envoy compares the whole Upgrade value): an Upgrade that is not
 * exactly one protocol the route allows (`websocket, h2c`, another protocol, any upgrade on a route
 * that allows none, Seldon's generated routes and redirect Mappings included) is refused with 403
 * ("upgrade_failed") and the connection closed; `h2c` alone is dropped and the request served as a
 * request (Envoy's HTTP/1.1 codec takes no HTTP/1.1 → HTTP/2 upgrade). No route: its 404, the
 * connection closed (Envoy's codec reads what follows an upgrade head as the upgrade's). A TLS
 * upstream is dialled over TLS, as its requests are.
 */
import { validHost } from '../../routing/values/host.js';
import { stripMatchingPort } from '../../routing/emissary/edge-rules.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { match, headerGetter } from '../../routing/table/match.js';
import type { NodeRequest } from '../edge/node-exchange.js';
import { UpgradeExchange, upgradesTo, type TakenUpgrade, type WebSocketDeps } from './upgrade-exchange.js';

/** What `should` decided, carried by the request to the 'upgrade' listener (nothing kept elsewhere). */
const TAKEN = Symbol('upgrade route');
type Carrying = IncomingMessage & { [TAKEN]?: TakenUpgrade };

export class WebSocketRelay {
  constructor(private readonly d: WebSocketDeps) {}

  /** Node's `shouldUpgradeCallback`: true for every upgrade but h2c's, with what its route decided riding on the request. */
  readonly should = (req: IncomingMessage): boolean => {
    const asked = req.headers.upgrade;
    // An invalid Host is never relayed: served as a request, edge/refusals.ts answers it 400.
    if (asked === undefined || !validHost(req.headers.host ?? '')) return false;
    const protocol = asked.trim().toLowerCase();
    // Envoy's HTTP/1.1 codec drops an h2c upgrade's fields and serves the request as a request.
    if (protocol === 'h2c') return false;
    const since = performance.now();
    const table = this.d.state.current;
    const rules = this.d.rules;
    const given = req.headers.host ?? '';
    const host = rules?.stripMatchingHostPort === true ? stripMatchingPort(given, req.socket.localPort) : given;
    const routed = match(table, { kind: 'rest', method: req.method ?? 'GET', path: req.url ?? '/', host, header: headerGetter(req.headers) }, this.d.picker, this.d.eligible);
    // No route: its answer (404) is the exchange's too, so that nothing after the head is read as a request.
    if (!routed.ok) {
      (req as Carrying)[TAKEN] = { routed, table, since, host, protocol: null };
      return true;
    }
    (req as Carrying)[TAKEN] = { routed, table, since, host, protocol: upgradesTo(routed.backend, protocol) ? protocol : null };
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
