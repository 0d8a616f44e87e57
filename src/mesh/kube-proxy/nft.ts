/**
 * The shape of kube-proxy's nftables mode (`--proxy-mode nftables`): one `kube-proxy` table per
 * family whose base chains hook nat and filter; verdict maps (service-ips, service-nodeports,
 * no-endpoint-*, firewall-ips) dispatch to per-service chains, `numgen random mod n` picks an
 * endpoint, affinity lives in dynamic sets. Names follow kube-proxy: the first 8 base32
 * characters of SHA-256 of `ns/name/proto/port[__ip/port]`, then that text. Loads with `nft -f`.
 */
import { kubeHash } from './hash';
import { viewOf, type ServiceView } from './context';
import type { Endpoint, ServicePort } from './model';
import type { Generated } from './generate';
import type { NodeOptions } from './context';
import { nodeOptions } from './context';
import { markOf } from './marks';

const named = (text: string) => `${kubeHash(text).slice(0, 8)}-${text}`;

function baseName(sp: ServicePort): string {
  const [nsn, port = ''] = sp.name.split(':');
  return `${nsn}/${sp.protocol}/${port}`;
}

/** The endpoint part of a chain name: `[`, `]` dropped and `:` turned into `/`, as nftables names allow. */
const endpointName = (sp: ServicePort, e: Endpoint) => named(`${baseName(sp)}__${e.text.replace(/[[\]]/g, '').replace(/:/g, '/')}`);

/** The whole table, for one family, as `nft -f` input. */
export function renderNft(gen: Generated, options: Partial<NodeOptions> = {}): string {
  const o = nodeOptions(options);
  const fam = gen.family;
  const t = `${fam === 'ipv4' ? 'ip' : 'ip6'} kube-proxy`;
  const ip = fam === 'ipv4' ? 'ip' : 'ip6';
  const addrType = fam === 'ipv4' ? 'ipv4_addr' : 'ipv6_addr';
  const mark = markOf(o.masqueradeBit);
  const pod = o.clusterCidrs.find((c) => c.includes(':') === (fam === 'ipv6'));
  // nft resolves a jump or goto when the rule is added, so every chain and set is declared
  // before any rule (the kernel refused `goto endpoint-…` with ENOENT otherwise).
  const decl: string[] = [];
  const body: string[] = [];
  const L = (s: string) => (/^add (table|chain|set|map) |^flush /.test(s) ? decl : body).push(s);
  L(`add table ${t} { comment "rules for kube-proxy" ; }`);
  // Replace what an earlier run left: flushing the table keeps the run idempotent.
  L(`flush table ${t}`);
  L(`add set ${t} cluster-ips { type ${addrType} ; comment "Active ClusterIPs" ; }`);
  L(`add set ${t} nodeport-ips { type ${addrType} ; comment "IPs that accept NodePort traffic" ; }`);
  L(`add map ${t} firewall-ips { type ${addrType} . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }`);
  L(`add map ${t} no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }`);
  L(`add map ${t} no-endpoint-services { type ${addrType} . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }`);
  L(`add map ${t} service-ips { type ${addrType} . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }`);
  L(`add map ${t} service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }`);
  for (const [c, hook] of [
    ['cluster-ips-check', ''], ['filter-prerouting-pre-dnat', 'filter hook prerouting priority -110'], ['filter-output-pre-dnat', 'filter hook output priority -110'],
    ['filter-forward', 'filter hook forward priority 0'], ['filter-input', 'filter hook input priority 0'], ['filter-output', 'filter hook output priority 0'],
    ['firewall-check', ''], ['mark-for-masquerade', ''], ['masquerading', ''], ['nat-output', 'nat hook output priority -100'],
    ['nat-postrouting', 'nat hook postrouting priority 100'], ['nat-prerouting', 'nat hook prerouting priority -100'], ['nodeport-endpoints-check', ''],
    ['reject-chain', ''], ['services', ''], ['service-endpoints-check', ''],
  ])
    L(`add chain ${t} ${c}${hook ? ` { type ${hook} ; }` : c === 'reject-chain' ? ' { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }' : ''}`);
  L(`add rule ${t} cluster-ips-check ${ip} daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"`);
  L(`add rule ${t} filter-prerouting-pre-dnat ct state new jump firewall-check`);
  L(`add rule ${t} filter-forward ct state new jump service-endpoints-check`);
  L(`add rule ${t} filter-forward ct state new jump cluster-ips-check`);
  L(`add rule ${t} filter-input ct state new jump nodeport-endpoints-check`);
  L(`add rule ${t} filter-input ct state new jump service-endpoints-check`);
  L(`add rule ${t} filter-output ct state new jump service-endpoints-check`);
  L(`add rule ${t} filter-output-pre-dnat ct state new jump firewall-check`);
  L(`add rule ${t} filter-output ct state new jump cluster-ips-check`);
  L(`add rule ${t} firewall-check ${ip} daddr . meta l4proto . th dport vmap @firewall-ips`);
  L(`add rule ${t} mark-for-masquerade mark set mark or ${mark}`);
  L(`add rule ${t} masquerading mark and ${mark} == 0 return`);
  L(`add rule ${t} masquerading mark set mark xor ${mark}`);
  L(`add rule ${t} masquerading masquerade fully-random`);
  L(`add rule ${t} nat-output jump services`);
  L(`add rule ${t} nat-postrouting jump masquerading`);
  L(`add rule ${t} nat-prerouting jump services`);
  L(`add rule ${t} nodeport-endpoints-check ${ip} daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports`);
  L(`add rule ${t} reject-chain reject`);
  L(`add rule ${t} services ${ip} daddr . meta l4proto . th dport vmap @service-ips`);
  L(`add rule ${t} services ${ip} daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports`);
  for (const nip of o.nodeIPs.filter((a) => a.includes(':') === (fam === 'ipv6'))) L(`add element ${t} nodeport-ips { ${nip} }`);
  L(`add rule ${t} service-endpoints-check ${ip} daddr . meta l4proto . th dport vmap @no-endpoint-services`);
  for (const sp of gen.ports) writeService(L, t, ip, addrType, viewOf(sp, gen.names), pod);
  return [...decl, ...body].join('\n') + '\n';
}

function writeService(L: (s: string) => void, t: string, ip: string, addrType: string, v: ServiceView, pod: string | undefined): void {
  const { sp } = v;
  const svc = `service-${named(baseName(sp))}`;
  const local = `local-${named(baseName(sp))}`;
  const ext = `external-${named(baseName(sp))}`;
  const fw = `firewall-${named(baseName(sp))}`;
  const key = (addr: string) => `${addr} . ${sp.protocol} . ${sp.port}`;
  const dispatch = (chain: string, eps: Endpoint[]) => {
    L(`add chain ${t} ${chain}`);
    if (chain === svc && pod) L(`add rule ${t} ${chain} ${ip} daddr ${sp.clusterIP} ${ip} saddr != ${pod} jump mark-for-masquerade`);
    if (sp.affinitySeconds !== undefined)
      for (const e of eps) L(`add rule ${t} ${chain} ${ip} saddr @affinity-${endpointName(sp, e)} goto endpoint-${endpointName(sp, e)}`);
    L(`add rule ${t} ${chain} numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto endpoint-${endpointName(sp, e)}`).join(' , ')} }`);
  };
  if (sp.affinitySeconds !== undefined)
    for (const e of v.cat.reachable) L(`add set ${t} affinity-${endpointName(sp, e)} { type ${addrType} ; flags dynamic,timeout ; timeout ${sp.affinitySeconds}s ; }`);
  if (v.usesClusterChain) dispatch(svc, v.cat.cluster);
  if (v.usesLocalChain) dispatch(local, v.cat.local);
  if (v.usesExtChain) {
    L(`add chain ${t} ${ext}`);
    if (!sp.externalPolicyLocal) L(`add rule ${t} ${ext} jump mark-for-masquerade`);
    else {
      if (pod) L(`add rule ${t} ${ext} ${ip} saddr ${pod} goto ${svc} comment "short-circuit pod traffic"`);
      L(`add rule ${t} ${ext} fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"`);
      L(`add rule ${t} ${ext} fib saddr type local goto ${svc} comment "short-circuit local traffic"`);
    }
    if (v.hasExternal) L(`add rule ${t} ${ext} goto ${sp.externalPolicyLocal ? local : svc}`);
  }
  for (const e of v.cat.reachable) {
    const c = `endpoint-${endpointName(sp, e)}`;
    L(`add chain ${t} ${c}`);
    L(`add rule ${t} ${c} ${ip} saddr ${e.ip} jump mark-for-masquerade`);
    if (sp.affinitySeconds !== undefined) L(`add rule ${t} ${c} update @affinity-${endpointName(sp, e)} { ${ip} saddr }`);
    L(`add rule ${t} ${c} meta l4proto ${sp.protocol} dnat to ${e.text}`);
  }
  if (v.usesFwChain) {
    L(`add chain ${t} ${fw}`);
    L(`add rule ${t} ${fw} ${ip} saddr != { ${sp.sourceRanges.join(', ')} } drop`);
  }
  L(`add element ${t} cluster-ips { ${sp.clusterIP} }`);
  const verdict = (f: { target: string } | undefined) => (f?.target === 'DROP' ? 'drop' : 'goto reject-chain');
  const noEp = (k: string) => `add element ${t} no-endpoint-services { ${k} comment "${sp.name}" : ${verdict(v.externalFilter)} }`;
  if (v.hasInternal) L(`add element ${t} service-ips { ${key(sp.clusterIP)} : goto ${sp.internalPolicyLocal ? local : svc} }`);
  else L(`add element ${t} no-endpoint-services { ${key(sp.clusterIP)} comment "${sp.name}" : ${verdict(v.internalFilter)} }`);
  for (const a of [...sp.externalIPs, ...sp.loadBalancerIPs]) {
    if (v.cat.any) L(`add element ${t} service-ips { ${key(a)} : goto ${ext} }`);
    if (!v.hasExternal) L(noEp(key(a)));
  }
  if (v.usesFwChain) for (const a of sp.loadBalancerIPs) L(`add element ${t} firewall-ips { ${key(a)} : goto ${fw} }`);
  if (sp.nodePort !== 0) {
    if (v.cat.any) L(`add element ${t} service-nodeports { ${sp.protocol} . ${sp.nodePort} : goto ${ext} }`);
    if (!v.hasExternal) L(`add element ${t} no-endpoint-nodeports { ${sp.protocol} . ${sp.nodePort} comment "${sp.name}" : ${verdict(v.externalFilter)} }`);
  }
}
