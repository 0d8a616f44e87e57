/** Traffic to a Service's cluster IP: KUBE-SERVICES dispatch (nat), or REJECT/DROP (filter) without endpoints. */
import type { Gen, ServiceView } from './context';
import { rejectTarget } from './marks';

/** The KUBE-SERVICES rule for the cluster IP. */
export function writeClusterIP(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (v.hasInternal) {
    g.chains.service('KUBE-SERVICES', sp.clusterIP, sp.protocol, sp.name, ' cluster IP', sp.port, v.internalChain);
    return;
  }
  const f = v.internalFilter!;
  g.chains.add('filter', 'KUBE-SERVICES', { destination: sp.clusterIP, protocol: sp.protocol, comment: f.comment, dport: sp.port, target: filterTarget(g, f.target) });
}

/** REJECT (with the family's default reply, as iptables-save prints it) or DROP. */
export function filterTarget(g: Gen, t: 'REJECT' | 'DROP'): string {
  return t === 'DROP' ? ' -j DROP' : rejectTarget(g.family);
}

/**
 * The first rule of the internal chain: mark for masquerade what does not come from a pod
 * (off-cluster traffic routed to the service range), or everything with --masquerade-all.
 * Without a cluster CIDR kube-proxy cannot tell pods apart and writes nothing.
 */
export function writeInternalMasquerade(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (!v.hasInternal || (!g.opts.masqueradeAll && g.podCidr === undefined)) return;
  g.chains.add('nat', v.internalChain, {
    comment: [sp.name, ' cluster IP'],
    protocol: sp.protocol,
    destination: sp.clusterIP,
    dport: sp.port,
    source: g.opts.masqueradeAll ? undefined : g.podCidr,
    notSource: true,
    jump: 'KUBE-MARK-MASQ',
  });
}
