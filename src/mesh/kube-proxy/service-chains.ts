/**
 * The per-service chains: KUBE-EXT (external traffic: masquerade, short-circuit local sources,
 * then the policy chain) and KUBE-SVC / KUBE-SVL (pick an endpoint: ClientIP affinity first,
 * then 1/n, 1/(n-1), … so every endpoint gets an equal share).
 */
import type { Gen, ServiceView } from './context';
import type { Endpoint } from './model';
import { addrtypeLocal } from './rules';
import { recentTail, statisticBytes } from './marks';
import { EXT, SVL, type ChainId } from './names';

/** The KUBE-EXT chain of a service port reachable from outside. */
export function writeExternalChain(g: Gen, v: ServiceView): void {
  const { sp } = v;
  if (!v.usesExtChain) return;
  const ext = g.names.sibling(sp.svc, EXT);
  g.chains.chain('nat', ext);
  if (!sp.externalPolicyLocal) {
    // Endpoints may be on other nodes: masquerade so replies come back through this one.
    g.chains.add('nat', ext, { comment: `masquerade traffic for ${sp.name} external destinations`, jump: 'KUBE-MARK-MASQ' });
  } else {
    // Pods reaching an external address of the Service behave as if they went out and came back: Cluster policy.
    if (g.podCidr !== undefined) g.chains.add('nat', ext, { comment: `pod traffic for ${sp.name} external destinations`, source: g.podCidr, jump: sp.svc });
    g.chains.add('nat', ext, { comment: `masquerade LOCAL traffic for ${sp.name} external destinations`, matches: addrtypeLocal('src'), jump: 'KUBE-MARK-MASQ' });
    g.chains.add('nat', ext, { comment: `route LOCAL traffic for ${sp.name} external destinations`, matches: addrtypeLocal('src'), jump: sp.svc });
  }
  if (v.hasExternal) g.chains.add('nat', ext, { jump: v.externalPolicyChain });
}

/** KUBE-SVC (Cluster policy) and KUBE-SVL (Local policy) chains with their endpoint choice. */
export function writePolicyChains(g: Gen, v: ServiceView): void {
  if (v.usesClusterChain) writeDispatch(g, v, v.sp.svc, v.cat.cluster);
  if (v.usesLocalChain) writeDispatch(g, v, g.names.sibling(v.sp.svc, SVL), v.cat.local);
}

function writeDispatch(g: Gen, v: ServiceView, chain: ChainId, eps: Endpoint[]): void {
  const { sp } = v;
  g.chains.chain('nat', chain);
  // The comment names the endpoint (none in a large cluster).
  if (sp.affinitySeconds !== undefined)
    for (const e of eps)
      g.chains.add('nat', chain, { comment: g.largeCluster ? undefined : [sp.name, ' -> ', e.text], matches: ` -m recent --rcheck --seconds ${sp.affinitySeconds} --reap --name ${g.names.text(e.chain)}${recentTail(g.family)}`, jump: e.chain });
  for (let i = 0; i < eps.length; i++) {
    const e = eps[i];
    const n = eps.length - i;
    g.chains.jump(chain, undefined, g.largeCluster ? undefined : sp.name, e, n > 1 ? statisticBytes(n) : undefined, e.chain);
  }
}
