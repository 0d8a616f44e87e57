/** NodePorts and health-check NodePorts: KUBE-NODEPORTS in nat (to the EXT chain) and filter (ACCEPT health checks). */
import type { Gen, ServiceView } from './context';
import { filterTarget } from './cluster-ip';
import { addrtypeLocal } from './rules';
import { EXT } from './names';

/** The NodePort rules of one service port. */
export function writeNodePort(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (sp.nodePort !== 0) {
    // NodePorts are not subject to loadBalancerSourceRanges: always the EXT chain.
    if (v.cat.any) g.chains.add('nat', 'KUBE-NODEPORTS', { comment: sp.name, protocol: sp.protocol, dport: sp.nodePort, jump: g.names.sibling(sp.svc, EXT) });
    if (!v.hasExternal) {
      const f = v.externalFilter!;
      g.chains.add('filter', 'KUBE-EXTERNAL-SERVICES', { comment: f.comment, matches: addrtypeLocal('dst'), protocol: sp.protocol, dport: sp.nodePort, target: filterTarget(g, f.target) });
    }
  }
  // The health check answers whether or not this node has local endpoints; it is always TCP.
  if (sp.healthCheckNodePort !== 0)
    g.chains.add('filter', 'KUBE-NODEPORTS', { comment: `${sp.name} health check node port`, protocol: 'tcp', dport: sp.healthCheckNodePort, jump: 'ACCEPT' });
}
