/** KUBE-SEP chains: masquerade hairpin traffic (an endpoint reaching itself), remember affinity, DNAT. */
import type { Gen, ServiceView } from './context';
import { recentTail } from './marks';

/** One KUBE-SEP chain per endpoint reachable from this node. */
export function writeEndpointChains(g: Gen, v: ServiceView): void {
  const { sp } = v;
  // A large cluster leaves out the per-endpoint comments.
  const comment = g.largeCluster ? undefined : sp.name;
  const eps = v.cat.reachable;
  for (let i = 0; i < eps.length; i++) {
    const e = eps[i];
    g.chains.chain('nat', e.chain);
    // A pod talking to itself through the Service would see its own address as source: masquerade it.
    g.chains.jump(e.chain, e.ip, comment, undefined, undefined, 'KUBE-MARK-MASQ');
    const matches = sp.affinitySeconds !== undefined ? ` -m recent --set --name ${g.names.text(e.chain)}${recentTail(g.family)}` : '';
    g.chains.dnat(e.chain, sp.protocol, comment, matches, e.ip, e.port);
  }
}
