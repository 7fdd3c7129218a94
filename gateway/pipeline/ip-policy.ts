/**
 * The ambassador Module's `ip_allow` / `ip_deny` (routing/emissary/module.ts `IpPolicy`), as Envoy's
 * RBAC filter applies them: `allow` admits a request when any principal matches, `deny` refuses it
 * when any does. `peer` is the connection's address; `remote` the client's as the gateway determines
 * it: from a trusted proxy (--trusted-proxies, or every peer with the Module's xff_num_trusted_hops), the
 * X-Forwarded-For entry `hops` from the right (1: the last; routing/emissary/edge-rules.ts `clientFromForwarded`, which
 * reads `1.2.3.4:5678` and `[2001:db8::1]:443` as their addresses), the peer when the list is shorter; from
 * anyone else, the peer. With `remote` principals, an entry that is no address is refused. The policy is replaced whole when the Module is read again.
 */
import { BlockList, isIP } from 'node:net';
import type { IpPolicy } from '../../routing/emissary/module.js';
import { clientFromForwarded } from '../../routing/emissary/edge-rules.js';

class CompiledIpPolicy {
  private readonly peer = new BlockList();
  private readonly remote = new BlockList();
  private readonly allow: boolean;
  private readonly hasRemote: boolean;

  constructor(
    policy: IpPolicy,
    private readonly hops: number,
  ) {
    this.allow = policy.action === 'allow';
    this.hasRemote = policy.principals.some((p) => p.kind === 'remote');
    for (const p of policy.principals) (p.kind === 'peer' ? this.peer : this.remote).addSubnet(p.address, p.prefix, p.family);
  }

  /** Whether a request from `peer` (a trusted proxy: `trusted`), with `xff` as sent, may go on. */
  admits(peer: string | undefined, trusted: boolean, xff: string | undefined): boolean {
    const remote = trusted ? (clientFromForwarded(xff, this.hops) ?? peer) : peer;
    // An entry that is no address in any form proxies write cannot be judged: refused, never let past a deny
    // (Envoy falls back to the peer there).
    if (this.hasRemote && remote !== undefined && remote !== peer && isIP(unmapped(remote)) === 0) return false;
    const matched = has(this.peer, peer) || has(this.remote, remote);
    return this.allow ? matched : !matched;
  }
}

/** `address` is in `list` (IPv4-mapped IPv6 addresses, as Node reports IPv4 peers on a dual-stack socket, read as IPv4). */
function has(list: BlockList, address: string | undefined): boolean {
  if (address === undefined) return false;
  const a = unmapped(address);
  const family = isIP(a);
  return family !== 0 && list.check(a, family === 6 ? 'ipv6' : 'ipv4');
}

/** An IPv4-mapped IPv6 address as its IPv4 address; any other as it is. */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
}

/** The policy in force in this process: none until a Module sets one (the pipeline's ip stage reads `policy`). */
export class IpFilter {
  policy: CompiledIpPolicy | undefined;

  /** `hops`: the Module's client address rule at start (routing/emissary/edge-rules.ts `EdgeRules.clientHops`), 1 without it. */
  constructor(
    policy: IpPolicy | undefined,
    private readonly hops = 1,
  ) {
    this.replace(policy);
  }

  replace(policy: IpPolicy | undefined): void {
    this.policy = policy === undefined ? undefined : new CompiledIpPolicy(policy, this.hops);
  }
}
