/** What the generator's builders share: options, the rule text being written, and per-service decisions. */
import type { Family } from '../../model/addr';
import type { TableName } from '../../model/ruleset';
import type { Categorized, Endpoint, ServicePort } from './model';
import { categorize, externallyAccessible, usesClusterEndpoints, usesLocalEndpoints } from './model';
import { writeDnatRule, writeJumpRule, writeRule, writeServiceRule, type Protocol, type RuleSpec } from './rules';
import { TableText } from './lines';
import { EXT, FW, SVL, type ChainId, type ChainNames } from './names';

/** The node kube-proxy runs on, and kube-proxy's own flags. */
export interface NodeOptions {
  family: Family;
  /** --hostname-override: endpoints whose nodeName equals it are local. */
  hostname: string;
  /** Node addresses (any family; the ones of `family` are used): loadBalancerSourceRanges admit the node. */
  nodeIPs: string[];
  /** --cluster-cidr (any family): pod traffic detection; without one, no pod-specific rules are written. */
  clusterCidrs: string[];
  /** --iptables-masquerade-bit (0–31), 14 by default. */
  masqueradeBit: number;
  /** --masquerade-all. */
  masqueradeAll: boolean;
  /** --iptables-localhost-nodeports (IPv4 only), true by default. */
  localhostNodePorts: boolean;
  /** Add the jumps from the built-in chains that kube-proxy installs with `iptables -I` (and kubelet's KUBE-FIREWALL jumps). */
  builtinJumps: boolean;
  /** MASQUERADE --random-fully (iptables ≥ 1.6.2 has it; kube-proxy's fake iptables in its tests does not). */
  randomFully: boolean;
  /** Add KUBE-PROXY-CANARY in mangle, nat and filter (kube-proxy's monitor creates them). */
  canary: boolean;
}

/** Defaults as kube-proxy's own. */
export function nodeOptions(o: Partial<NodeOptions> = {}): NodeOptions {
  return { family: 'ipv4', hostname: '', nodeIPs: [], clusterCidrs: [], masqueradeBit: 14, masqueradeAll: false, localhostNodePorts: true, randomFully: true, builtinJumps: true, canary: true, ...o };
}

/**
 * The rules being written, as text: per table, chains in the order they were first declared,
 * each with the ranges of its `-A CHAIN …` lines in the table's line buffer (see lines.ts).
 * kube-proxy keeps its restore input the same way; the save form, restore form and partial
 * syncs are cut from these lines. A chain is given by its id in `names` (hashed names are only
 * ever ids) or by its literal name.
 */
export class ChainSet {
  readonly tables = new Map<TableName, TableText>();
  /** The nat table, where nearly every rule goes: kept at hand rather than looked up per rule. */
  private nat: TableText | undefined = undefined;
  /** `natBytes`: about how many bytes the nat table's rules will take (its buffer then never grows, nor is copied as it does). */
  constructor(
    private readonly family: Family,
    readonly names: ChainNames,
    private readonly natBytes?: number,
  ) {}
  private table(table: TableName): TableText {
    if (table === 'nat' && this.nat !== undefined) return this.nat;
    let t = this.tables.get(table);
    // The nat table holds nearly every chain: sized for them all up front.
    if (!t) this.tables.set(table, (t = table === 'nat' ? new TableText(this.names, this.natBytes, this.names.start.length) : new TableText(this.names)));
    if (table === 'nat') this.nat = t;
    return t;
  }
  private id(name: ChainId | string): ChainId {
    return typeof name === 'number' ? name : this.names.id(name);
  }
  /** Declare a chain (no rules yet) unless it exists. */
  chain(table: TableName, name: ChainId | string): void {
    this.table(table).declare(this.id(name));
  }
  /** Append a rule to a chain, declaring the chain on first use. */
  add(table: TableName, name: ChainId | string, spec: RuleSpec): void {
    this.put(table, name, spec, false);
  }
  /** Append `[-s SOURCE] [COMMENT [-> ENDPOINT]] [MATCHES] -j TARGET` to a nat chain (see writeJumpRule). */
  jump(chain: ChainId, source: string | undefined, comment: string | undefined, endpoint: Endpoint | undefined, matches: Uint8Array | undefined, jump: ChainId | string): void {
    const t = this.table('nat');
    const start = t.lines.length;
    writeJumpRule(t.lines, this.names, this.family, chain, source, comment, endpoint, matches, jump);
    t.append(chain, start, t.lines.length);
  }
  /** Append `-d ADDRESS -p PROTO COMMENT -m PROTO --dport PORT -j CHAIN` to a nat chain, the comment being `comment` + `suffix` (see writeServiceRule). */
  service(chain: ChainId | string, destination: string, protocol: Protocol, comment: string, suffix: string, dport: number, jump: ChainId): void {
    const t = this.table('nat');
    const id = this.id(chain);
    const start = t.lines.length;
    writeServiceRule(t.lines, this.names, this.family, id, destination, protocol, comment, suffix, dport, jump);
    t.append(id, start, t.lines.length);
  }
  /** Append `-p PROTO [COMMENT] [MATCHES] -m PROTO -j DNAT --to-destination IP:PORT` to a nat chain. */
  dnat(chain: ChainId, protocol: Protocol, comment: string | undefined, matches: string, ip: string, port: number): void {
    const t = this.table('nat');
    const start = t.lines.length;
    writeDnatRule(t.lines, this.names, this.family, chain, protocol, comment, matches, ip, port);
    t.append(chain, start, t.lines.length);
  }
  /** Insert a rule at the head of a chain, as `iptables -I` does. */
  insert(table: TableName, name: ChainId | string, spec: RuleSpec): void {
    this.put(table, name, spec, true);
  }
  private put(table: TableName, name: ChainId | string, spec: RuleSpec, atHead: boolean): void {
    const t = this.table(table);
    const id = this.id(name);
    const start = t.lines.length;
    writeRule(t.lines, this.names, this.family, id, spec);
    if (atHead) t.insert(id, start, t.lines.length);
    else t.append(id, start, t.lines.length);
  }
  /** Whether a table has the chain of this literal name. */
  has(table: TableName, name: string): boolean {
    const id = this.names.find(name);
    return id !== undefined && !!this.tables.get(table)?.has(id);
  }
}

/** Everything a builder needs. */
export interface Gen {
  opts: NodeOptions;
  family: Family;
  chains: ChainSet;
  names: ChainNames;
  /** The masquerade mark as iptables-save prints it (`0x4000`). */
  mark: string;
  /** More than 1,000 endpoints: kube-proxy drops the per-endpoint comments. */
  largeCluster: boolean;
  /** Pod CIDR of this family (local traffic detection), if any. */
  podCidr?: string;
  nodeIP?: string;
}

/** A filter-table verdict for traffic without endpoints: REJECT (none at all) or DROP (none local). */
export interface FilterVerdict {
  target: 'REJECT' | 'DROP';
  comment: string;
}

/** kube-proxy's per-service decisions (syncProxyRules, before any rule is written). */
export interface ServiceView {
  sp: ServicePort;
  cat: Categorized;
  hasInternal: boolean;
  hasExternal: boolean;
  internalChain: ChainId;
  externalPolicyChain: ChainId;
  usesClusterChain: boolean;
  usesLocalChain: boolean;
  usesExtChain: boolean;
  usesFwChain: boolean;
  /** KUBE-FW or KUBE-EXT; -1 without load-balancer IPs. */
  loadBalancerChain: ChainId;
  internalFilter?: FilterVerdict;
  externalFilter?: FilterVerdict;
}

/** Decide which chains a service port uses and what happens to traffic without endpoints. */
export function viewOf(sp: ServicePort, names: ChainNames): ServiceView {
  const cat = categorize(sp);
  const usesClusterChain = cat.cluster.length > 0 && usesClusterEndpoints(sp);
  const usesLocalChain = cat.local.length > 0 && usesLocalEndpoints(sp);
  // The sibling names are made only when used (most Services need none of them).
  const internalChain = sp.internalPolicyLocal ? names.sibling(sp.svc, SVL) : sp.svc;
  const hasInternal = cat.any && !(sp.internalPolicyLocal && cat.local.length === 0);
  const hasExternal = cat.any && !(sp.externalPolicyLocal && cat.local.length === 0);
  const accessible = externallyAccessible(sp);
  const usesFwChain = cat.any && sp.loadBalancerIPs.length > 0 && sp.sourceRanges.length > 0;
  let internalFilter: FilterVerdict | undefined;
  let externalFilter: FilterVerdict | undefined;
  if (!cat.any) internalFilter = externalFilter = { target: 'REJECT', comment: `${sp.name} has no endpoints` };
  else {
    if (!hasInternal) internalFilter = { target: 'DROP', comment: `${sp.name} has no local endpoints` };
    if (!hasExternal) externalFilter = { target: 'DROP', comment: `${sp.name} has no local endpoints` };
  }
  return {
    sp,
    cat,
    hasInternal,
    hasExternal,
    internalChain,
    externalPolicyChain: sp.externalPolicyLocal ? names.sibling(sp.svc, SVL) : sp.svc,
    usesClusterChain,
    usesLocalChain,
    usesExtChain: cat.any && accessible,
    usesFwChain,
    loadBalancerChain: usesFwChain ? names.sibling(sp.svc, FW) : sp.loadBalancerIPs.length ? names.sibling(sp.svc, EXT) : -1,
    internalFilter,
    externalFilter,
  };
}
