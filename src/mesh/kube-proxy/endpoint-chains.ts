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
    g.chains.jump(e.chain, e.ip, undefined, comment, 'KUBE-MARK-MASQ');
    const matches = sp.affinitySeconds !== undefined ? `${comment} -m recent --set --name ${g.names.text(e.chain)}${recentTail(g.family)}` : comment;
    g.chains.dnat(e.chain, sp.protocol, matches, e.ip, e.port);
  }
}
