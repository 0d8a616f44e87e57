/**
 * kube-proxy's view of the objects for one IP family: service ports (ServicePortName →
 * addresses, policies, chain names) and their endpoints, sorted and categorised as kube-proxy's
 * service change tracker, EndpointSlice cache and CategorizeEndpoints do (topology hints aside).
 */
import { parseCidr, type Family } from '../../model/addr';
import type { Issue } from '../../model/issue';
import { endpointChainName, serviceChainNames, type ServiceChains } from './hash';
import { ipFamilyOf, type EndpointSliceObject, type EndpointsObject, type KubeObjects, type ServiceObject } from './objects';

/** One endpoint of a service port, as kube-proxy's endpointInfo holds it. */
export interface Endpoint {
  ip: string;
  port: number;
  /** `ip:port`, IPv6 in brackets: the text hashed into the KUBE-SEP name and shown in comments. */
  text: string;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  /** On this node (the slice's nodeName equals --hostname). */
  local: boolean;
  chain: string;
}

/** One port of one Service, for one family. */
export interface ServicePort {
  /** `namespace/name` or `namespace/name:port`: kube-proxy's ServicePortName.String(). */
  name: string;
  protocol: 'tcp' | 'udp' | 'sctp';
  clusterIP: string;
  port: number;
  nodePort: number;
  externalIPs: string[];
  loadBalancerIPs: string[];
  sourceRanges: string[];
  healthCheckNodePort: number;
  internalPolicyLocal: boolean;
  externalPolicyLocal: boolean;
  /** ClientIP affinity timeout in seconds; absent without affinity. */
  affinitySeconds?: number;
  chains: ServiceChains;
  endpoints: Endpoint[];
}

const familyOfSlice = (f: Family) => (f === 'ipv4' ? 'IPv4' : 'IPv6');

/** The service ports of `objs` for `family`, sorted by name then protocol (kube-proxy uses map order). */
export function servicePorts(objs: KubeObjects, family: Family, hostname: string, issues: Issue[]): ServicePort[] {
  const eps = endpointsByPortName(objs, family, hostname);
  const out: ServicePort[] = [];
  for (const svc of objs.services) portsOf(svc, family, eps, issues, out);
  // Sorted by one key per port, `name NUL protocol NUL index`, with the native string sort (a
  // comparator called 140,000 times for 10,000 ports cost more): NUL sorts before every character
  // of a name, so the keys order as (name, protocol), and the index makes each key unique.
  const keys = out.map((sp, i) => `${sp.name}\0${sp.protocol}\0${i}`).sort();
  return keys.map((k) => out[Number(k.slice(k.lastIndexOf('\0') + 1))]);
}

const NONE: never[] = [];
/** Service and slice protocols as iptables spells them (one shared string each, not a new one per port). */
const PROTOCOL = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

function portsOf(svc: ServiceObject, family: Family, eps: Map<string, Endpoint[]>, issues: Issue[], out: ServicePort[]): void {
  const s = svc.spec;
  const nsn = `${svc.metadata.namespace}/${svc.metadata.name}`;
  // ShouldSkipService: ExternalName and headless Services get no rules.
  if (s.type === 'ExternalName') return;
  const ips = s.clusterIPs?.length ? s.clusterIPs : NONE;
  const first = ips.length ? ips[0] : s.clusterIP;
  if (!first || first === 'None') return;
  const clusterIP = ips.length ? ips.find((ip) => ipFamilyOf(ip) === family) : ipFamilyOf(first) === family ? first : undefined;
  if (!clusterIP) return;
  const externallyAccessibleByType = s.type === 'NodePort' || s.type === 'LoadBalancer' || (s.type === 'ClusterIP' && s.externalIPs.length > 0);
  const externalPolicyLocal = externallyAccessibleByType && s.externalTrafficPolicy === 'Local';
  const ranges: string[] = s.loadBalancerSourceRanges.length ? [] : NONE;
  for (const raw of s.loadBalancerSourceRanges) {
    // kube-proxy trims the whitespace its own tests put around ranges.
    const text = raw.trim();
    const fam = text.includes(':') ? 'ipv6' : 'ipv4';
    const c = parseCidr(text, fam);
    if (typeof c === 'string') issues.push({ severity: 'warning', code: 'bad-source-range', message: `Service ${nsn}: spec.loadBalancerSourceRanges: '${raw}' is not a CIDR; ignored` });
    else if (fam === family) ranges.push(text);
  }
  const ingress = svc.status?.loadBalancer?.ingress;
  const lbIPs = s.type === 'LoadBalancer' && ingress?.length ? ingress.filter((i) => i.ip && i.ipMode !== 'Proxy' && ipFamilyOf(i.ip) === family).map((i) => i.ip!) : NONE;
  // Shared by the ports of the Service: nobody changes them.
  const externalIPs = s.externalIPs.length ? s.externalIPs.filter((ip) => ipFamilyOf(ip) === family) : NONE;
  const affinitySeconds = s.sessionAffinity === 'ClientIP' ? s.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800 : undefined;
  for (const p of s.ports) {
    const name = p.name ? `${nsn}:${p.name}` : nsn;
    const protocol = PROTOCOL[p.protocol];
    out.push({
      name,
      protocol,
      clusterIP,
      port: p.port,
      nodePort: s.type === 'ClusterIP' ? 0 : p.nodePort ?? 0,
      externalIPs,
      loadBalancerIPs: lbIPs,
      sourceRanges: s.type === 'LoadBalancer' ? ranges : NONE,
      healthCheckNodePort: s.type === 'LoadBalancer' && externalPolicyLocal ? s.healthCheckNodePort ?? 0 : 0,
      internalPolicyLocal: s.internalTrafficPolicy === 'Local',
      externalPolicyLocal,
      affinitySeconds,
      chains: serviceChainNames(name, protocol),
      endpoints: eps.get(`${name}/${protocol}`) ?? NONE,
    });
  }
}

/** The endpoints found for one service port, before deduplication. */
interface Found {
  portName: string;
  protocol: string;
  endpoints: Endpoint[];
}

/** Endpoints per `portName/protocol`, deduplicated by `ip:port` and sorted by that text (byEndpoint). */
function endpointsByPortName(objs: KubeObjects, family: Family, hostname: string): Map<string, Endpoint[]> {
  const found = new Map<string, Found>();
  const list = (portName: string, protocol: string): Endpoint[] => {
    const key = `${portName}/${protocol}`;
    let f = found.get(key);
    if (!f) found.set(key, (f = { portName, protocol, endpoints: [] }));
    return f.endpoints;
  };
  // Which Services have slices matters only when there are legacy Endpoints to weigh against them.
  const sliced = objs.endpoints.length ? new Set<string>() : undefined;
  for (const sl of objs.slices) addSlice(sl, family, hostname, sliced, list);
  // Legacy Endpoints reach kube-proxy only through the EndpointSlice mirroring controller,
  // which leaves alone Services that already have slices.
  for (const e of objs.endpoints) if (!sliced!.has(`${e.metadata.namespace}/${e.metadata.name}`)) addEndpoints(e, family, hostname, list);
  const out = new Map<string, Endpoint[]>();
  for (const [key, f] of found) {
    const eps = unique(f.endpoints);
    // Hashed once deduplicated: a name per endpoint that gets a chain, not per slice entry.
    for (const e of eps) e.chain = endpointChainName(f.portName, f.protocol, e.text);
    out.set(key, eps);
  }
  return out;
}

/**
 * Sorted by `ip:port` text with one entry per text. The EndpointSlice cache keeps the first one it
 * sees, unless a later one is local (the last local one wins); the sort is stable, so each run of
 * equal texts is in the order the endpoints came.
 */
function unique(l: Endpoint[]): Endpoint[] {
  if (l.length < 2) return l;
  // Slices usually list their endpoints in order already; a sort call costs more than this check.
  let sorted = true;
  for (let i = 1; i < l.length && sorted; i++) sorted = l[i - 1].text < l[i].text;
  if (sorted) return l;
  l.sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
  let dup = false;
  for (let i = 1; i < l.length && !dup; i++) dup = l[i].text === l[i - 1].text;
  if (!dup) return l;
  const out: Endpoint[] = [];
  for (let i = 0; i < l.length; ) {
    let j = i;
    let pick = l[i];
    for (; j < l.length && l[j].text === l[i].text; j++) if (l[j].local) pick = l[j];
    out.push(pick);
    i = j;
  }
  return out;
}

/** A new endpoint, its chain named once it is known to be kept. */
const endpoint = (ip: string, port: number, ready: boolean, serving: boolean, terminating: boolean, local: boolean): Endpoint => ({
  ip,
  port,
  text: ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`,
  ready,
  serving,
  terminating,
  local,
  chain: '',
});

type List = (portName: string, protocol: string) => Endpoint[];

function addSlice(sl: EndpointSliceObject, family: Family, hostname: string, sliced: Set<string> | undefined, list: List): void {
  const svc = sl.metadata.labels['kubernetes.io/service-name'];
  if (!svc) return;
  const nsn = `${sl.metadata.namespace}/${svc}`;
  sliced?.add(nsn);
  if (sl.addressType !== familyOfSlice(family)) return;
  for (const p of sl.ports ?? []) {
    if (p.port === null || p.port === undefined) continue;
    const l = list(p.name ? `${nsn}:${p.name}` : nsn, PROTOCOL[p.protocol]);
    for (const ep of sl.endpoints ?? []) {
      const ip = ep.addresses[0];
      if (ipFamilyOf(ip) !== family) continue;
      const ready = ep.conditions.ready ?? true;
      l.push(endpoint(ip, p.port, ready, ep.conditions.serving ?? ready, ep.conditions.terminating ?? false, hostname !== '' && ep.nodeName === hostname));
    }
  }
}

function addEndpoints(e: EndpointsObject, family: Family, hostname: string, list: List): void {
  const nsn = `${e.metadata.namespace}/${e.metadata.name}`;
  for (const ss of e.subsets)
    for (const p of ss.ports) {
      const l = list(p.name ? `${nsn}:${p.name}` : nsn, PROTOCOL[p.protocol]);
      const each = (addrs: typeof ss.addresses, ready: boolean) => {
        for (const a of addrs)
          if (ipFamilyOf(a.ip) === family)
            l.push(endpoint(a.ip, p.port, ready, ready, false, hostname !== '' && a.nodeName === hostname));
      };
      each(ss.addresses, true);
      each(ss.notReadyAddresses, false);
    }
}

/** The endpoints each traffic policy uses, as kube-proxy's CategorizeEndpoints decides (no topology hints). */
export interface Categorized {
  cluster: Endpoint[];
  local: Endpoint[];
  /** Endpoints that get a KUBE-SEP chain. */
  reachable: Endpoint[];
  /** Whether the Service has any usable endpoint anywhere. */
  any: boolean;
}

/** Whether the port is reachable from outside: NodePort, load balancer IPs or external IPs. */
export const externallyAccessible = (sp: ServicePort) => sp.nodePort !== 0 || sp.loadBalancerIPs.length > 0 || sp.externalIPs.length > 0;
/** Cluster endpoints are needed unless both policies are Local (external Local still short-circuits to them). */
export const usesClusterEndpoints = (sp: ServicePort) => !sp.internalPolicyLocal || externallyAccessible(sp);
/** Local endpoints are needed when either policy is Local. */
export const usesLocalEndpoints = (sp: ServicePort) => sp.internalPolicyLocal || (sp.externalPolicyLocal && externallyAccessible(sp));

/** Split a service port's endpoints by policy: ready ones first, serving-and-terminating ones only when none is ready. */
export function categorize(sp: ServicePort): Categorized {
  const eps = sp.endpoints;
  const fallback = (e: Endpoint) => e.serving && e.terminating;
  let cluster: Endpoint[] = NONE;
  let local: Endpoint[] = NONE;
  let any = false;
  if (usesClusterEndpoints(sp)) {
    // Usually every endpoint is ready: the list itself then, rather than a copy.
    cluster = eps.every((e) => e.ready) ? eps : eps.filter((e) => e.ready);
    if (cluster.length === 0) cluster = eps.filter(fallback);
    any = cluster.length > 0;
  }
  if (!usesLocalEndpoints(sp)) return { cluster, local, reachable: cluster, any };
  if (eps.some((e) => e.ready || fallback(e))) any = true;
  local = eps.filter((e) => e.local && e.ready);
  if (local.length === 0) local = eps.filter((e) => e.local && fallback(e));
  if (!usesClusterEndpoints(sp) || cluster.length === 0) return { cluster, local, reachable: local, any };
  if (local.length === 0) return { cluster, local, reachable: cluster, any };
  const union = new Map<string, Endpoint>();
  for (const e of [...cluster, ...local]) union.set(e.text, e);
  return { cluster, local, reachable: [...union.values()].sort((a, b) => (a.text < b.text ? -1 : 1)), any };
}
