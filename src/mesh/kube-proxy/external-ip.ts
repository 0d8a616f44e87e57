/** Traffic to a Service's externalIPs: to the EXT chain when there are endpoints, else REJECT/DROP in KUBE-EXTERNAL-SERVICES. */
import type { Gen, ServiceView } from './context';
import { filterTarget } from './cluster-ip';
import { EXT } from './names';

/** KUBE-SERVICES (nat) and KUBE-EXTERNAL-SERVICES (filter) rules for each external IP. */
export function writeExternalIPs(g: Gen, v: ServiceView): void {
  const { sp } = v;
  // Indexed loops in the per-port builders: before they are optimized, a for-of loop makes an
  // iterator and a result object per step, for 10,000 ports and more, most of them empty.
  for (let i = 0; i < sp.externalIPs.length; i++) {
    const ip = sp.externalIPs[i];
    const base = { protocol: sp.protocol, destination: ip, dport: sp.port };
    if (v.cat.any) g.chains.service('KUBE-SERVICES', ip, sp.protocol, sp.name, ' external IP', sp.port, g.names.sibling(sp.svc, EXT));
    // No endpoints at all (REJECT), or none for external traffic (DROP what the EXT chain did not short-circuit).
    if (!v.hasExternal) {
      const f = v.externalFilter!;
      g.chains.add('filter', 'KUBE-EXTERNAL-SERVICES', { ...base, comment: f.comment, target: filterTarget(g, f.target) });
    }
  }
}
