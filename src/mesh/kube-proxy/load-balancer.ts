/**
 * Traffic to load-balancer ingress IPs: to the EXT chain, or through a KUBE-FW chain that admits
 * loadBalancerSourceRanges (and the node itself when a range holds the node IP); what the FW chain
 * does not DNAT is dropped by KUBE-PROXY-FIREWALL in the filter table.
 */
import type { Gen, ServiceView } from './context';
import { filterTarget } from './cluster-ip';
import { cidrContains, parseCidr, parseIP } from '../../model/addr';
import { EXT, FW } from './names';

/** KUBE-SERVICES, KUBE-PROXY-FIREWALL and KUBE-EXTERNAL-SERVICES rules for the ingress IPs. */
export function writeLoadBalancerIPs(g: Gen, v: ServiceView): void {
  const { sp } = v;
  // Indexed loops: see writeExternalIPs.
  for (let i = 0; i < sp.loadBalancerIPs.length; i++) {
    const ip = sp.loadBalancerIPs[i];
    const base = { protocol: sp.protocol, destination: ip, dport: sp.port };
    if (v.cat.any) g.chains.service('KUBE-SERVICES', ip, sp.protocol, sp.name, ' loadbalancer IP', sp.port, v.loadBalancerChain);
    if (v.usesFwChain)
      g.chains.add('filter', 'KUBE-PROXY-FIREWALL', { ...base, comment: `${sp.name} traffic not accepted by ${g.names.text(g.names.sibling(sp.svc, FW))}`, jump: 'DROP' });
  }
  if (!v.hasExternal)
    for (const ip of sp.loadBalancerIPs) {
      const f = v.externalFilter!;
      g.chains.add('filter', 'KUBE-EXTERNAL-SERVICES', { protocol: sp.protocol, destination: ip, dport: sp.port, comment: f.comment, target: filterTarget(g, f.target) });
    }
}

/** The KUBE-FW chain: one rule per source range, the node's own VIP sources, then a marker rule that does nothing. */
export function writeFirewallChain(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (!v.usesFwChain) return;
  const fw = g.names.sibling(sp.svc, FW);
  const ext = g.names.sibling(sp.svc, EXT);
  const comment = `${sp.name} loadbalancer IP`;
  g.chains.chain('nat', fw);
  const node = g.nodeIP ? parseIP(g.nodeIP, g.family) : null;
  let allowFromNode = false;
  for (const range of sp.sourceRanges) {
    g.chains.add('nat', fw, { comment, source: range, jump: ext });
    const c = parseCidr(range, g.family);
    if (node && typeof c !== 'string' && cidrContains(c, node)) allowFromNode = true;
  }
  // A VIP bound locally makes a node's request to it come back with the VIP as source.
  if (allowFromNode) for (const ip of sp.loadBalancerIPs) g.chains.add('nat', fw, { comment, source: ip, jump: ext });
  g.chains.add('nat', fw, { comment: `other traffic to ${sp.name} will be dropped by KUBE-PROXY-FIREWALL` });
}
