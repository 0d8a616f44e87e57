/**
 * kube-proxy's view of the objects for one IP family: service ports (ServicePortName →
 * addresses, policies, chain names) and their endpoints, sorted and categorised as kube-proxy's
 * service change tracker, EndpointSlice cache and CategorizeEndpoints do (topology hints aside).
 */
import { parseCidr, type Family } from '../../model/addr';
import type { Issue } from '../../model/issue';
import { hashLength, hashPut, hashPutByte, hashPutEndpoint, hashRewind, hashStart } from './hash';
import { SEP, SVC, type ChainId, type ChainNames } from './names';
import { ipFamilyOf, type EndpointSliceObject, type EndpointsObject, type KubeObjects, type ServiceObject } from './objects';

/** One endpoint of a service port, as kube-proxy's endpointInfo holds it. */
export class Endpoint {
  /** Its KUBE-SEP chain (named once the endpoint is known to be kept). */
  chain: ChainId = -1;
  constructor(
    readonly ip: string,
    readonly port: number,
    readonly ready: boolean,
    readonly serving: boolean,
    readonly terminating: boolean,
    /** On this node (the slice's nodeName equals --hostname). */
    readonly local: boolean,
  ) {}
  /**
   * `ip:port`, IPv6 in brackets: the text hashed into the KUBE-SEP name and shown in comments.
   * Made when asked for: the hash and the sort take the parts, and a large cluster shows none,
   * so 90,000 endpoints do not keep 90,000 strings alive through the generation.
   */
  get text(): string {
    return this.ip.includes(':') ? `[${this.ip}]:${this.port}` : `${this.ip}:${this.port}`;
  }
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
  /** Its KUBE-SVC chain; KUBE-SVL, KUBE-EXT and KUBE-FW share its hash (ChainNames.sibling). */
  svc: ChainId;
  endpoints: Endpoint[];
}

const familyOfSlice = (f: Family) => (f === 'ipv4' ? 'IPv4' : 'IPv6');

/** The service ports of `objs` for `family`, sorted by name then protocol (kube-proxy uses map order). */
export function servicePorts(objs: KubeObjects, family: Family, hostname: string, issues: Issue[], names: ChainNames): ServicePort[] {
  const eps = endpointsByService(objs, family, hostname, names);
  const out: ServicePort[] = [];
  for (let i = 0; i < objs.services.length; i++) portsOf(objs.services[i], family, eps, issues, names, out);
  // Sorted by name, then protocol, then (for the same name and protocol twice: the same Service
  // given twice) by the decimal text of the port's index, as sorting one key string per port,
  // `name NUL protocol NUL index`, ordered them. Those keys, made and sorted natively, took twice
  // as long as this comparator in a fresh process of the bundled CLI.
  const order = Array.from({ length: out.length }, (_, i) => i);
  order.sort((i, j) => {
    const a = out[i];
    const b = out[j];
    if (a.name !== b.name) return a.name < b.name ? -1 : 1;
    if (a.protocol !== b.protocol) return a.protocol < b.protocol ? -1 : 1;
    return String(i) < String(j) ? -1 : 1;
  });
  return order.map((i) => out[i]);
}

const NONE: never[] = [];
/** Service and slice protocols as iptables spells them (one shared string each, not a new one per port). */
const PROTOCOL = { TCP: 'tcp', UDP: 'udp', SCTP: 'sctp' } as const;

function portsOf(svc: ServiceObject, family: Family, eps: ByService, issues: Issue[], names: ChainNames, out: ServicePort[]): void {
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
  const found = eps.byNamespace.get(svc.metadata.namespace)?.get(svc.metadata.name);
  for (let i = 0; i < s.ports.length; i++) {
    const p = s.ports[i];
    const name = p.name ? `${nsn}:${p.name}` : nsn;
    const protocol = PROTOCOL[p.protocol];
    let endpoints: Endpoint[] = NONE;
    if (found) for (let k = 0; k < found.length; k++) if (found[k].portName === p.name && found[k].protocol === protocol) endpoints = found[k].endpoints;
    hashStart();
    hashPut(name);
    hashPut(protocol);
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
      svc: names.hashed(SVC),
      endpoints,
    });
  }
}

/** The endpoints found for one service port (named by its Service and port name). */
interface Found {
  namespace: string;
  service: string;
  /** The port's name, '' when unnamed. */
  portName: string;
  protocol: string;
  endpoints: Endpoint[];
}

/**
 * Endpoints by namespace, then Service name, then port: a map per namespace of small lists,
 * looked up with the objects' own strings. Keys made per slice and per port (`ns/name:port/tcp`)
 * were four new strings each, every one hashed and then kept alive to the end of the lookups.
 */
interface ByService {
  byNamespace: Map<string, Map<string, Found[]>>;
  /** Every list, in the order made: walked with an index rather than through the maps. */
  all: Found[];
}

/** The endpoint list of one service port, made on first use. */
function listOf(by: ByService, namespace: string, service: string, portName: string, protocol: string): Endpoint[] {
  let inner = by.byNamespace.get(namespace);
  if (!inner) by.byNamespace.set(namespace, (inner = new Map()));
  let ports = inner.get(service);
  if (!ports) inner.set(service, (ports = []));
  for (let i = 0; i < ports.length; i++) if (ports[i].portName === portName && ports[i].protocol === protocol) return ports[i].endpoints;
  const f: Found = { namespace, service, portName, protocol, endpoints: [] };
  ports.push(f);
  by.all.push(f);
  return f.endpoints;
}

/** Endpoints per service port, deduplicated by `ip:port` and sorted by that text (byEndpoint), each with its KUBE-SEP chain. */
function endpointsByService(objs: KubeObjects, family: Family, hostname: string, names: ChainNames): ByService {
  const by: ByService = { byNamespace: new Map(), all: [] };
  // Which Services have slices matters only when there are legacy Endpoints to weigh against them.
  const sliced = objs.endpoints.length ? new Set<string>() : undefined;
  for (let i = 0; i < objs.slices.length; i++) addSlice(objs.slices[i], family, hostname, sliced, by);
  // Legacy Endpoints reach kube-proxy only through the EndpointSlice mirroring controller,
  // which leaves alone Services that already have slices.
  for (const e of objs.endpoints) if (!sliced!.has(`${e.metadata.namespace}/${e.metadata.name}`)) addEndpoints(e, family, hostname, by);
  // An indexed loop: this runs once per sync, mostly before it is compiled, when a for-of loop
  // makes an iterator result per step (and walking the maps took a closure per Service).
  for (let k = 0; k < by.all.length; k++) nameEndpoints(by.all[k], family, names);
  return by;
}

/** Deduplicate and sort a service port's endpoints, and name their KUBE-SEP chains. */
function nameEndpoints(f: Found, family: Family, names: ChainNames): void {
  const eps = (f.endpoints = unique(f.endpoints));
  // Hashed once deduplicated: a name per endpoint that gets a chain, not per slice entry.
  // The text is `namespace/name[:port]` + protocol + `ip:port`; the start is written once.
  hashStart();
  hashPut(f.namespace);
  hashPutByte(47);
  hashPut(f.service);
  if (f.portName) {
    hashPutByte(58);
    hashPut(f.portName);
  }
  hashPut(f.protocol);
  const start = hashLength();
  for (let i = 0; i < eps.length; i++) {
    hashRewind(start);
    hashPutEndpoint(eps[i].ip, eps[i].port, family === 'ipv6');
    eps[i].chain = names.hashed(SEP);
  }
}

/**
 * How the `ip:port` texts of two endpoints of one family compare, without making them: up to
 * where the addresses differ, or, when one address is the start of the other, the shorter one's
 * next character (`:`, or `]` for IPv6, neither of which its family's other addresses have there
 * as a digit would be) against the longer one's; equal addresses compare their ports' decimals.
 */
export function compareText(a: Endpoint, b: Endpoint): number {
  const x = a.ip;
  const y = b.ip;
  if (x === y) return a.port === b.port ? 0 : String(a.port) < String(b.port) ? -1 : 1;
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) {
    const c = x.charCodeAt(i) - y.charCodeAt(i);
    if (c !== 0) return c;
  }
  const end = x.includes(':') ? 93 : 58;
  return x.length === n ? end - y.charCodeAt(n) : x.charCodeAt(n) - end;
}

/** Whether two endpoints have the same `ip:port` text. */
const sameText = (a: Endpoint, b: Endpoint): boolean => a.ip === b.ip && a.port === b.port;

/**
 * Sorted by `ip:port` text with one entry per text. The EndpointSlice cache keeps the first one it
 * sees, unless a later one is local (the last local one wins); the sort is stable, so each run of
 * equal texts is in the order the endpoints came.
 */
function unique(l: Endpoint[]): Endpoint[] {
  if (l.length < 2) return l;
  // Slices usually list their endpoints in order already; a sort call costs more than this check.
  let sorted = true;
  for (let i = 1; i < l.length && sorted; i++) sorted = compareText(l[i - 1], l[i]) < 0;
  if (sorted) return l;
  l.sort(compareText);
  let dup = false;
  for (let i = 1; i < l.length && !dup; i++) dup = sameText(l[i], l[i - 1]);
  if (!dup) return l;
  const out: Endpoint[] = [];
  for (let i = 0; i < l.length; ) {
    let j = i;
    let pick = l[i];
    for (; j < l.length && sameText(l[j], l[i]); j++) if (l[j].local) pick = l[j];
    out.push(pick);
    i = j;
  }
  return out;
}

function addSlice(sl: EndpointSliceObject, family: Family, hostname: string, sliced: Set<string> | undefined, by: ByService): void {
  const svc = sl.metadata.labels['kubernetes.io/service-name'];
  if (!svc) return;
  sliced?.add(`${sl.metadata.namespace}/${svc}`);
  if (sl.addressType !== familyOfSlice(family)) return;
  const ports = sl.ports ?? NONE;
  const endpoints = sl.endpoints ?? NONE;
  for (let i = 0; i < ports.length; i++) {
    const p = ports[i];
    if (p.port === null || p.port === undefined) continue;
    const l = listOf(by, sl.metadata.namespace, svc, p.name ?? '', PROTOCOL[p.protocol]);
    for (let j = 0; j < endpoints.length; j++) {
      const ep = endpoints[j];
      const ip = ep.addresses[0];
      if (ipFamilyOf(ip) !== family) continue;
      const ready = ep.conditions.ready ?? true;
      l.push(new Endpoint(ip, p.port, ready, ep.conditions.serving ?? ready, ep.conditions.terminating ?? false, hostname !== '' && ep.nodeName === hostname));
    }
  }
}

function addEndpoints(e: EndpointsObject, family: Family, hostname: string, by: ByService): void {
  for (const ss of e.subsets)
    for (const p of ss.ports) {
      const l = listOf(by, e.metadata.namespace, e.metadata.name, p.name, PROTOCOL[p.protocol]);
      for (const a of ss.addresses) if (ipFamilyOf(a.ip) === family) l.push(new Endpoint(a.ip, p.port, true, true, false, hostname !== '' && a.nodeName === hostname));
      for (const a of ss.notReadyAddresses) if (ipFamilyOf(a.ip) === family) l.push(new Endpoint(a.ip, p.port, false, false, false, hostname !== '' && a.nodeName === hostname));
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

/** Serving and terminating: used only when no endpoint is ready. */
const fallback = (e: Endpoint): boolean => e.serving && e.terminating;

/** The endpoints of `eps` that are ready (the list itself when all are: the usual case, and no copy). */
function readyOf(eps: Endpoint[]): Endpoint[] {
  let all = true;
  for (let i = 0; i < eps.length && all; i++) all = eps[i].ready;
  if (all) return eps;
  const out: Endpoint[] = [];
  for (const e of eps) if (e.ready) out.push(e);
  return out;
}

/** Split a service port's endpoints by policy: ready ones first, serving-and-terminating ones only when none is ready. */
export function categorize(sp: ServicePort): Categorized {
  const eps = sp.endpoints;
  let cluster: Endpoint[] = NONE;
  let local: Endpoint[] = NONE;
  let any = false;
  if (usesClusterEndpoints(sp)) {
    cluster = readyOf(eps);
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
  return { cluster, local, reachable: [...union.values()].sort(compareText), any };
}
