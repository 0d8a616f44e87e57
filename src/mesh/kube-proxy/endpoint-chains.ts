/** KUBE-SEP chains: masquerade hairpin traffic (an endpoint reaching itself), remember affinity, DNAT. */
import type { Gen, ServiceView } from './context';
import { jump, match, rule, target } from './rules';
import { recentTail } from './marks';

/** One KUBE-SEP chain per endpoint reachable from this node. */
export function writeEndpointChains(g: Gen, v: ServiceView): void {
  const { sp } = v;
  const comment = g.largeCluster ? undefined : sp.name;
  for (const e of v.cat.reachable) {
    g.chains.chain('nat', e.chain);
    // A pod talking to itself through the Service would see its own address as source: masquerade it.
    g.chains.add('nat', e.chain, rule(g.nat, { comment, source: e.ip, target: jump('KUBE-MARK-MASQ') }));
    const affinity = sp.affinitySeconds !== undefined ? [match(g.nat, sp.protocol, 'recent', '--set', '--name', e.chain, ...recentTail(g.opts.family))] : [];
    g.chains.add('nat', e.chain, rule(g.nat, {
      comment,
      matches: affinity,
      protocol: sp.protocol,
      after: [],
      target: target(g.nat, sp.protocol, 'DNAT', '--to-destination', e.text),
    }));
  }
}
