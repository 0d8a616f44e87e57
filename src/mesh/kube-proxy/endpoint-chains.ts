/** KUBE-SEP chains: masquerade hairpin traffic (an endpoint reaching itself), remember affinity, DNAT. */
import type { Gen, ServiceView } from './context';
import { commentMatch } from './rules';
import { recentTail } from './marks';

/** One KUBE-SEP chain per endpoint reachable from this node. */
export function writeEndpointChains(g: Gen, v: ServiceView): void {
  const { sp } = v;
  // Every rule of every endpoint of the Service carries the same comment: quoted once.
  const comment = g.largeCluster ? '' : commentMatch(sp.name);
  for (const e of v.cat.reachable) {
    g.chains.chain('nat', e.chain);
    // A pod talking to itself through the Service would see its own address as source: masquerade it.
    g.chains.add('nat', e.chain, { source: e.ip, matches: comment, jump: 'KUBE-MARK-MASQ' });
    g.chains.add('nat', e.chain, {
      matches: sp.affinitySeconds !== undefined ? `${comment} -m recent --set --name ${e.chain}${recentTail(g.family)}` : comment,
      protocol: sp.protocol,
      protocolMatch: true,
      dnat: e.ip,
      dnatPort: e.port,
    });
  }
}
