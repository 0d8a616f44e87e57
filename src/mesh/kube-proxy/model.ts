/**
 * kube-proxy's view of the objects for one IP family: service ports (ServicePortName →
 * addresses, policies, chain names) and their endpoints, sorted and categorised as kube-proxy's
 * service change tracker, EndpointSlice cache and CategorizeEndpoints do (topology hints aside).
 */
import { parseCidr, type Family } from '../../model/addr';
import type { Issue } from '../../model/issue';
import { endpointChainName, serviceChainNames } from './hash';
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
  chains: { svc: string; svl: string; ext: string; fw: string };
  endpoints: Endpoint[];
}

const familyOfSlice = (f: Family) => (f === 'ipv4' ? 'IPv4' : 'IPv6');

/** The service ports of `objs` for `family`, sorted by name then protocol (kube-proxy uses map order). */
export function servicePorts(objs: KubeObjects, family: Family, hostname: string, issues: Issue[]): ServicePort[] {
  const eps = endpointsByPortName(objs, family, hostname);
  const out: ServicePort[] = [];
  for (const svc of objs.services) out.push(...portsOf(svc, family, eps, issues));
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
}

function portsOf(svc: ServiceObject, family: Family, eps: Map<string, Endpoint[]>, issues: Issue[]): ServicePort[] {
  const s = svc.spec;
  const nsn = `${svc.metadata.namespace}/${svc.metadata.name}`;
  // ShouldSkipService: ExternalName and headless Services get no rules.
  if (s.type === 'ExternalName') return [];
  const ips = s.clusterIPs?.length ? s.clusterIPs : s.clusterIP ? [s.clusterIP] : [];
  if (ips.length === 0 || ips[0] === 'None') return [];
  const clusterIP = ips.find((ip) => ipFamilyOf(ip) === family);
  if (!clusterIP) return [];
  const externallyAccessibleByType = s.type === 'NodePort' || s.type === 'LoadBalancer' || (s.type === 'ClusterIP' && s.externalIPs.length > 0);
  const externalPolicyLocal = externallyAccessibleByType && s.externalTrafficPolicy === 'Local';
  const ranges: string[] = [];
  for (const raw of s.loadBalancerSourceRanges) {
    // kube-proxy trims the whitespace its own tests put around ranges.
    const text = raw.trim();
    const fam = text.includes(':') ? 'ipv6' : 'ipv4';
    const c = parseCidr(text, fam);
    if (typeof c === 'string') issues.push({ severity: 'warning', code: 'bad-source-range', message: `Service ${nsn}: spec.loadBalancerSourceRanges: '${raw}' is not a CIDR; ignored` });
    else if (fam === family) ranges.push(text);
  }
  const lbIPs = (svc.status?.loadBalancer?.ingress ?? []).filter((i) => i.ip && i.ipMode !== 'Proxy' && ipFamilyOf(i.ip) === family).map((i) => i.ip!);
  return s.ports.map((p) => {
    const name = p.name ? `${nsn}:${p.name}` : nsn;
    const protocol = p.protocol.toLowerCase() as ServicePort['protocol'];
    return {
      name,
      protocol,
      clusterIP,
      port: p.port,
      nodePort: s.type === 'ClusterIP' ? 0 : p.nodePort ?? 0,
      externalIPs: s.externalIPs.filter((ip) => ipFamilyOf(ip) === family),
      loadBalancerIPs: s.type === 'LoadBalancer' ? lbIPs : [],
      sourceRanges: s.type === 'LoadBalancer' ? ranges : [],
      healthCheckNodePort: s.type === 'LoadBalancer' && externalPolicyLocal ? s.healthCheckNodePort ?? 0 : 0,
      internalPolicyLocal: s.internalTrafficPolicy === 'Local',
      externalPolicyLocal,
      affinitySeconds: s.sessionAffinity === 'ClientIP' ? s.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? 10800 : undefined,
      chains: serviceChainNames(name, protocol),
      endpoints: eps.get(`${name}/${protocol}`) ?? [],
    };
  });
}

const formatEndpoint = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

/** Endpoints per `portName/protocol`, deduplicated by `ip:port` and sorted by that text (byEndpoint). */
function endpointsByPortName(objs: KubeObjects, family: Family, hostname: string): Map<string, Endpoint[]> {
  const sets = new Map<string, Map<string, Endpoint>>();
  const add = (portName: string, protocol: string, ep: Omit<Endpoint, 'chain' | 'text'>) => {
    const key = `${portName}/${protocol}`;
    let set = sets.get(key);
    if (!set) sets.set(key, (set = new Map()));
    const text = formatEndpoint(ep.ip, ep.port);
    // The EndpointSlice cache keeps one entry per ip:port, preferring a local one.
    if (!set.has(text) || ep.local)
      set.set(text, { ip: ep.ip, port: ep.port, text, ready: ep.ready, serving: ep.serving, terminating: ep.terminating, local: ep.local, chain: endpointChainName(portName, protocol, text) });
  };
  const sliced = new Set<string>();
  for (const sl of objs.slices) addSlice(sl, family, hostname, sliced, add);
  // Legacy Endpoints reach kube-proxy only through the EndpointSlice mirroring controller,
  // which leaves alone Services that already have slices.
  for (const e of objs.endpoints) if (!sliced.has(`${e.metadata.namespace}/${e.metadata.name}`)) addEndpoints(e, family, hostname, add);
  const out = new Map<string, Endpoint[]>();
  for (const [k, set] of sets) out.set(k, [...set.values()].sort((a, b) => (a.text < b.text ? -1 : a.text > b.text ? 1 : 0)));
  return out;
}

type Add = (portName: string, protocol: string, ep: Omit<Endpoint, 'chain' | 'text'>) => void;

function addSlice(sl: EndpointSliceObject, family: Family, hostname: string, sliced: Set<string>, add: Add): void {
  const svc = sl.metadata.labels['kubernetes.io/service-name'];
  if (!svc) return;
  const nsn = `${sl.metadata.namespace}/${svc}`;
  sliced.add(nsn);
  if (sl.addressType !== familyOfSlice(family)) return;
  for (const p of sl.ports ?? []) {
    if (p.port === null || p.port === undefined) continue;
    const portName = p.name ? `${nsn}:${p.name}` : nsn;
    for (const ep of sl.endpoints ?? []) {
      const ip = ep.addresses[0];
      if (ipFamilyOf(ip) !== family) continue;
      const ready = ep.conditions.ready ?? true;
      add(portName, p.protocol.toLowerCase(), {
        ip,
        port: p.port,
        ready,
        serving: ep.conditions.serving ?? ready,
        terminating: ep.conditions.terminating ?? false,
        local: hostname !== '' && ep.nodeName === hostname,
      });
    }
  }
}

function addEndpoints(e: EndpointsObject, family: Family, hostname: string, add: Add): void {
  const nsn = `${e.metadata.namespace}/${e.metadata.name}`;
  for (const ss of e.subsets)
    for (const p of ss.ports) {
      const portName = p.name ? `${nsn}:${p.name}` : nsn;
      const each = (list: typeof ss.addresses, ready: boolean) => {
        for (const a of list)
          if (ipFamilyOf(a.ip) === family)
            add(portName, p.protocol.toLowerCase(), { ip: a.ip, port: p.port, ready, serving: ready, terminating: false, local: hostname !== '' && a.nodeName === hostname });
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
  let cluster: Endpoint[] = [];
  let local: Endpoint[] = [];
  let any = false;
  if (usesClusterEndpoints(sp)) {
    cluster = eps.filter((e) => e.ready);
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
