/**
 * Istio's sidecar interception (pilot-agent istio-iptables) as a generator: options in, one
 * Ruleset per family out. Rules are written as the argv Istio passes to iptables and read through
 * podtables' own parser, so each becomes the same structured rule the kernel would hold.
 */
import { parseCidr, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import type { Chain, Rule, Ruleset, TableName } from '../model/ruleset';
import { isBuiltin } from '../model/ruleset';
import type { NameTables } from '../extensions/types';
import { RulesetBuilder } from '../syntax/builder';
import { parseCommand } from '../syntax/command';
import { saveRuleSpec } from '../syntax/save';

/** istio-iptables settings, named after its flags. Lists are comma-separated as on its command line. */
export interface IstioOptions {
  /** -p: outbound capture port (Envoy). */
  proxyPort: string;
  /** -z: inbound capture port. */
  inboundCapturePort: string;
  /** -e: the tunnel (HBONE) port, never captured. */
  inboundTunnelPort: string;
  /** -u / -g: the proxy's uids and gids, whose traffic is not captured. */
  proxyUid: string;
  proxyGid: string;
  /** -m: REDIRECT (nat) or TPROXY (mangle) for inbound. */
  interceptionMode: 'REDIRECT' | 'TPROXY';
  /** -b: inbound ports to capture, `*` for all, empty for none. */
  inboundPortsInclude: string;
  /** -d: inbound ports to leave alone when -b is `*`. */
  inboundPortsExclude: string;
  /** -q / -o: outbound ports to capture always / never. */
  outboundPortsInclude: string;
  outboundPortsExclude: string;
  /** -i / -x: outbound destination ranges to capture (`*` for all) / to leave alone. */
  outboundIpRangesInclude: string;
  outboundIpRangesExclude: string;
  /** -c: interfaces whose traffic is never captured. */
  excludeInterfaces: string;
  /** -k: virtual interfaces whose inbound traffic is treated as outbound. */
  kubeVirtInterfaces: string;
  /** -t / -r: TPROXY mark and the routing table that delivers marked packets locally. */
  tproxyMark: string;
  tproxyRouteTable: string;
  redirectDns: boolean;
  captureAllDns: boolean;
  dnsServersV4: string[];
  dnsServersV6: string[];
  dropInvalid: boolean;
  /** --dual-stack: also write the IPv6 rules. */
  ipv6: boolean;
  /** Owner groups whose traffic is captured (`*` for all) or exempted. */
  ownerGroupsInclude: string;
  ownerGroupsExclude: string;
  /** The loopback range the proxy treats as the host's own. */
  hostIpv4LoopbackCidr: string;
}

/** istio-iptables' defaults. */
export const ISTIO_DEFAULTS: IstioOptions = {
  proxyPort: '15001', inboundCapturePort: '15006', inboundTunnelPort: '15008', proxyUid: '1337', proxyGid: '',
  interceptionMode: 'REDIRECT', inboundPortsInclude: '', inboundPortsExclude: '', outboundPortsInclude: '',
  outboundPortsExclude: '', outboundIpRangesInclude: '', outboundIpRangesExclude: '', excludeInterfaces: '',
  kubeVirtInterfaces: '', tproxyMark: '1337', tproxyRouteTable: '133', redirectDns: false, captureAllDns: false,
  dnsServersV4: [], dnsServersV6: [], dropInvalid: false, ipv6: false, ownerGroupsInclude: '*',
  ownerGroupsExclude: '', hostIpv4LoopbackCidr: '127.0.0.1/32',
};

/** The mark the proxy's own packets to the app carry in TPROXY mode. */
export const OUTBOUND_MARK = '1338';
/** Where the agent answers DNS. */
export const DNS_PORT = '15053';
/** Source addresses the proxy binds for inbound passthrough. */
const PASSTHROUGH = { ipv4: '127.0.0.6/32', ipv6: '::6/128' };
const LOOPBACK_V6 = '::1/128';

/** The chains Istio owns, in every table it uses. */
export const ISTIO_CHAINS = ['ISTIO_INBOUND', 'ISTIO_REDIRECT', 'ISTIO_IN_REDIRECT', 'ISTIO_OUTPUT', 'ISTIO_OUTPUT_DNS',
  'ISTIO_DIVERT', 'ISTIO_TPROXY', 'ISTIO_DROP'] as const;

const split = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '');

interface Op {
  family: Family;
  table: TableName;
  chain: string;
  /** Insert position, or undefined to append. */
  position?: number;
  argv: string[];
}

/** Collects rules per family in the order Istio issues them. */
class Rules {
  ops: Op[] = [];
  constructor(private v6: boolean) {}
  add4(table: TableName, chain: string, ...argv: string[]) {
    this.ops.push({ family: 'ipv4', table, chain, argv });
  }
  add6(table: TableName, chain: string, ...argv: string[]) {
    if (this.v6) this.ops.push({ family: 'ipv6', table, chain, argv });
  }
  add(table: TableName, chain: string, ...argv: string[]) {
    this.add4(table, chain, ...argv);
    this.add6(table, chain, ...argv);
  }
  /** A rule naming an address that differs by family (`v4`/`v6` replace the `@` placeholder). */
  addVersioned(v4: string, v6: string, table: TableName, chain: string, ...argv: string[]) {
    this.add4(table, chain, ...argv.map((a) => (a === '@' ? v4 : a)));
    this.add6(table, chain, ...argv.map((a) => (a === '@' ? v6 : a)));
  }
  insert(family: Family | 'both', table: TableName, chain: string, position: number, ...argv: string[]) {
    if (family !== 'ipv6') this.ops.push({ family: 'ipv4', table, chain, position, argv });
    if (family !== 'ipv4' && this.v6) this.ops.push({ family: 'ipv6', table, chain, position, argv });
  }
}

interface Ranges {
  wildcard: boolean;
  v4: string[];
  v6: string[];
  loopback: boolean;
}

function ranges(list: string, what: string, issues: Issue[]): Ranges {
  if (list.trim() === '*') return { wildcard: true, v4: [], v6: [], loopback: false };
  const r: Ranges = { wildcard: false, v4: [], v6: [], loopback: false };
  for (const item of split(list)) {
    const fam: Family = item.includes(':') ? 'ipv6' : 'ipv4';
    const c = parseCidr(item, fam);
    if (typeof c === 'string' || !item.includes('/')) {
      issues.push({ severity: 'error', code: 'bad-cidr', message: `${what}: invalid CIDR "${item}"` });
      continue;
    }
    (fam === 'ipv4' ? r.v4 : r.v6).push(item);
    if (fam === 'ipv4' ? item.startsWith('127.') : c.addr === 1n && c.mask === (1n << 128n) - 1n) r.loopback = true;
  }
  return r;
}

function checkPorts(list: string, what: string, issues: Issue[], wildcard = false): void {
  if (wildcard && list.trim() === '*') return;
  for (const p of split(list))
    if (!/^\d+$/.test(p) || Number(p) > 65535)
      issues.push({ severity: 'error', code: 'bad-port', message: `${what}: invalid port "${p}"` });
}

function checkIds(list: string, what: string, issues: Issue[], names?: Map<string, string>): void {
  for (const id of split(list))
    if (!/^\d+$/.test(id) && ![...(names?.values() ?? [])].includes(id))
      issues.push({ severity: 'error', code: 'bad-id', message: `${what}: invalid id "${id}"` });
}

/** Check every option value; issues name the flag and the value. */
export function validateIstio(o: IstioOptions, names?: NameTables): Issue[] {
  const issues: Issue[] = [];
  for (const [v, what] of [[o.proxyPort, '--envoy-port'], [o.inboundCapturePort, '--inbound-capture-port'], [o.inboundTunnelPort, '--inbound-tunnel-port']] as const)
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) issues.push({ severity: 'error', code: 'bad-port', message: `${what}: invalid port "${v}"` });
  checkPorts(o.inboundPortsInclude, '--istio-inbound-ports', issues, true);
  checkPorts(o.inboundPortsExclude, '--istio-local-exclude-ports', issues);
  checkPorts(o.outboundPortsInclude, '--istio-outbound-ports', issues);
  checkPorts(o.outboundPortsExclude, '--istio-local-outbound-ports-exclude', issues);
  checkIds(o.proxyUid, '--proxy-uid', issues, names?.users);
  checkIds(o.proxyGid, '--proxy-gid', issues, names?.groups);
  ranges(o.outboundIpRangesInclude, '--istio-service-cidr', issues);
  const ex = ranges(o.outboundIpRangesExclude, '--istio-service-exclude-cidr', issues);
  if (ex.wildcard) issues.push({ severity: 'error', code: 'bad-cidr', message: '--istio-service-exclude-cidr: "*" is not allowed' });
  if (!/^\d+$/.test(o.tproxyMark)) issues.push({ severity: 'error', code: 'bad-mark', message: `--istio-inbound-tproxy-mark: invalid mark "${o.tproxyMark}"` });
  if (!/^\d+$/.test(o.tproxyRouteTable)) issues.push({ severity: 'error', code: 'bad-table', message: `--istio-inbound-tproxy-route-table: invalid table "${o.tproxyRouteTable}"` });
  if (o.interceptionMode !== 'REDIRECT' && o.interceptionMode !== 'TPROXY')
    issues.push({ severity: 'error', code: 'bad-mode', message: `--istio-inbound-interception-mode: must be REDIRECT or TPROXY, not "${o.interceptionMode}"` });
  for (const s of o.dnsServersV4) if (typeof parseCidr(s, 'ipv4') === 'string') issues.push({ severity: 'error', code: 'bad-dns', message: `DNS server "${s}" is not an IPv4 address` });
  for (const s of o.dnsServersV6) if (typeof parseCidr(s, 'ipv6') === 'string') issues.push({ severity: 'error', code: 'bad-dns', message: `DNS server "${s}" is not an IPv6 address` });
  for (const i of [...split(o.excludeInterfaces), ...split(o.kubeVirtInterfaces)])
    if (i.length > 15) issues.push({ severity: 'error', code: 'bad-interface', message: `interface name "${i}" is longer than 15 characters` });
  return issues;
}

/** Interfaces Istio never captures: RETURN early in nat (and mangle for TPROXY). */
function excludeInterfaces(r: Rules, o: IstioOptions): void {
  for (const i of split(o.excludeInterfaces)) {
    r.add('nat', 'PREROUTING', '-i', i, '-j', 'RETURN');
    r.add('nat', 'OUTPUT', '-o', i, '-j', 'RETURN');
  }
  if (o.interceptionMode === 'TPROXY')
    for (const i of split(o.excludeInterfaces)) {
      r.add('mangle', 'PREROUTING', '-i', i, '-j', 'RETURN');
      r.add('mangle', 'OUTPUT', '-o', i, '-j', 'RETURN');
    }
}

/** Inbound traffic of virtual interfaces is not captured as inbound (it is rerouted as outbound later). */
function kubeVirtReturn(r: Rules, o: IstioOptions): void {
  for (const i of split(o.kubeVirtInterfaces)) r.insert('both', 'nat', 'PREROUTING', 1, '-i', i, '-j', 'RETURN');
}

function dropInvalid(r: Rules, o: IstioOptions): void {
  if (!o.dropInvalid) return;
  r.add('mangle', 'PREROUTING', '-m', 'conntrack', '--ctstate', 'INVALID', '-j', 'ISTIO_DROP');
  r.add('mangle', 'ISTIO_DROP', '-j', 'DROP');
}

/** The tunnel port bypass and the two REDIRECT chains. */
function redirectChains(r: Rules, o: IstioOptions): void {
  r.add('nat', 'ISTIO_INBOUND', '-p', 'tcp', '--dport', o.inboundTunnelPort, '-j', 'RETURN');
  r.add('nat', 'ISTIO_REDIRECT', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', o.proxyPort);
  r.add('nat', 'ISTIO_IN_REDIRECT', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', o.inboundCapturePort);
}

/** Inbound capture: all ports (`*`, less exclusions) or a list, by REDIRECT or TPROXY. */
function inboundCapture(r: Rules, o: IstioOptions): void {
  if (o.inboundPortsInclude === '') return;
  const tproxy = o.interceptionMode === 'TPROXY';
  const table: TableName = tproxy ? 'mangle' : 'nat';
  if (tproxy) {
    r.add('mangle', 'ISTIO_DIVERT', '-j', 'MARK', '--set-mark', o.tproxyMark);
    r.add('mangle', 'ISTIO_DIVERT', '-j', 'ACCEPT');
    r.addVersioned(o.hostIpv4LoopbackCidr, LOOPBACK_V6, 'mangle', 'ISTIO_TPROXY', '!', '-d', '@', '-p', 'tcp', '-j', 'TPROXY',
      '--tproxy-mark', `${o.tproxyMark}/0xffffffff`, '--on-port', o.inboundCapturePort);
  }
  r.add(table, 'PREROUTING', '-p', 'tcp', '-j', 'ISTIO_INBOUND');
  if (o.inboundPortsInclude.trim() === '*') {
    for (const p of split(o.inboundPortsExclude)) r.add(table, 'ISTIO_INBOUND', '-p', 'tcp', '--dport', p, '-j', 'RETURN');
    if (tproxy) {
      r.add('mangle', 'ISTIO_INBOUND', '-p', 'tcp', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ISTIO_DIVERT');
      r.add('mangle', 'ISTIO_INBOUND', '-p', 'tcp', '-j', 'ISTIO_TPROXY');
    } else r.add('nat', 'ISTIO_INBOUND', '-p', 'tcp', '-j', 'ISTIO_IN_REDIRECT');
    return;
  }
  for (const p of split(o.inboundPortsInclude)) {
    if (tproxy) {
      r.add('mangle', 'ISTIO_INBOUND', '-p', 'tcp', '--dport', p, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ISTIO_DIVERT');
      r.add('mangle', 'ISTIO_INBOUND', '-p', 'tcp', '--dport', p, '-j', 'ISTIO_TPROXY');
    } else r.add('nat', 'ISTIO_INBOUND', '-p', 'tcp', '--dport', p, '-j', 'ISTIO_IN_REDIRECT');
  }
}

/** The proxy's own traffic: back to itself through the inbound listener, else out untouched. */
function proxyOwners(r: Rules, o: IstioOptions, dns: boolean, includeLoopback: boolean): void {
  const kinds: ['--uid-owner' | '--gid-owner', string][] = [
    ...split(o.proxyUid).map((u) => ['--uid-owner', u] as ['--uid-owner', string]),
    ...split(o.proxyGid || o.proxyUid).map((g) => ['--gid-owner', g] as ['--gid-owner', string]),
  ];
  for (const [flag, id] of kinds) {
    // uids skip DNS in the self-call rule when DNS is captured; gids never did
    const ports = dns && flag === '--uid-owner'
      ? ['-m', 'multiport', '!', '--dports', `53,${o.inboundTunnelPort}`]
      : ['!', '--dport', o.inboundTunnelPort];
    r.addVersioned(o.hostIpv4LoopbackCidr, LOOPBACK_V6, 'nat', 'ISTIO_OUTPUT', '-o', 'lo', '!', '-d', '@', '-p', 'tcp', ...ports,
      '-m', 'owner', flag, id, '-j', 'ISTIO_IN_REDIRECT');
    if (!includeLoopback) {
      if (dns) r.add('nat', 'ISTIO_OUTPUT', '-o', 'lo', '-p', 'tcp', '!', '--dport', '53', '-m', 'owner', '!', flag, id, '-j', 'RETURN');
      else r.add('nat', 'ISTIO_OUTPUT', '-o', 'lo', '-m', 'owner', '!', flag, id, '-j', 'RETURN');
    }
    r.add('nat', 'ISTIO_OUTPUT', '-m', 'owner', flag, id, '-j', 'RETURN');
  }
}

/** Capture only some owner groups, or all but some. */
function ownerGroups(r: Rules, o: IstioOptions): void {
  const include = o.ownerGroupsInclude.trim();
  if (include !== '*' && include !== '') {
    const none = split(include).flatMap((g) => ['-m', 'owner', '!', '--gid-owner', g]);
    r.add('nat', 'ISTIO_OUTPUT', ...none, '-j', 'RETURN');
    return;
  }
  for (const g of split(o.ownerGroupsExclude)) r.add('nat', 'ISTIO_OUTPUT', '-m', 'owner', '--gid-owner', g, '-j', 'RETURN');
}

/** DNS to the agent on 15053, and conntrack zones that keep the two UDP legs apart. */
function dnsCapture(r: Rules, o: IstioOptions): void {
  const all = o.captureAllDns;
  r.add('raw', 'OUTPUT', '-j', 'ISTIO_OUTPUT_DNS');
  if (all || o.dnsServersV4.length) r.add4('nat', 'ISTIO_OUTPUT', '-j', 'ISTIO_OUTPUT_DNS');
  if (all || o.dnsServersV6.length) r.add6('nat', 'ISTIO_OUTPUT', '-j', 'ISTIO_OUTPUT_DNS');
  for (const proto of ['tcp', 'udp']) {
    const to = proto === 'tcp' ? '--to-ports' : '--to-port';
    if (all) r.add('nat', 'ISTIO_OUTPUT_DNS', '-p', proto, '--dport', '53', '-j', 'REDIRECT', to, DNS_PORT);
    else {
      for (const s of o.dnsServersV4) r.add4('nat', 'ISTIO_OUTPUT_DNS', '-p', proto, '--dport', '53', '-d', `${s}/32`, '-j', 'REDIRECT', to, DNS_PORT);
      for (const s of o.dnsServersV6) r.add6('nat', 'ISTIO_OUTPUT_DNS', '-p', proto, '--dport', '53', '-d', `${s}/128`, '-j', 'REDIRECT', to, DNS_PORT);
    }
  }
  const owners: [string, string][] = [
    ...split(o.proxyUid).map((u) => ['--uid-owner', u] as [string, string]),
    ...split(o.proxyGid || o.proxyUid).map((g) => ['--gid-owner', g] as [string, string]),
  ];
  for (const [flag, id] of owners) {
    r.add('raw', 'ISTIO_OUTPUT_DNS', '-p', 'udp', '--dport', '53', '-m', 'owner', flag, id, '-j', 'CT', '--zone', '1');
    r.add('raw', 'ISTIO_OUTPUT_DNS', '-p', 'udp', '--sport', DNS_PORT, '-m', 'owner', flag, id, '-j', 'CT', '--zone', '2');
  }
  if (all) {
    r.add('raw', 'PREROUTING', '-j', 'ISTIO_INBOUND');
    r.add('raw', 'ISTIO_OUTPUT_DNS', '-p', 'udp', '--dport', '53', '-j', 'CT', '--zone', '2');
    r.add('raw', 'ISTIO_INBOUND', '-p', 'udp', '--sport', '53', '-j', 'CT', '--zone', '1');
    return;
  }
  if (o.dnsServersV4.length) r.add4('raw', 'PREROUTING', '-j', 'ISTIO_INBOUND');
  for (const s of o.dnsServersV4) {
    r.add4('raw', 'ISTIO_OUTPUT_DNS', '-p', 'udp', '--dport', '53', '-d', `${s}/32`, '-j', 'CT', '--zone', '2');
    r.add4('raw', 'ISTIO_INBOUND', '-p', 'udp', '--sport', '53', '-s', `${s}/32`, '-j', 'CT', '--zone', '1');
  }
  if (o.dnsServersV6.length) r.add6('raw', 'PREROUTING', '-j', 'ISTIO_INBOUND');
  for (const s of o.dnsServersV6) {
    r.add6('raw', 'ISTIO_OUTPUT_DNS', '-p', 'udp', '--dport', '53', '-d', `${s}/128`, '-j', 'CT', '--zone', '2');
    r.add6('raw', 'ISTIO_INBOUND', '-p', 'udp', '--sport', '53', '-s', `${s}/128`, '-j', 'CT', '--zone', '1');
  }
}

/** Outbound destinations captured: all (`*`) or ranges; virtual interfaces rerouted the same way. */
function outboundInclude(r: Rules, o: IstioOptions, inc: Ranges): void {
  for (const family of ['ipv4', 'ipv6'] as Family[]) {
    const add = (...argv: string[]) => (family === 'ipv4' ? r.add4('nat', 'ISTIO_OUTPUT', ...argv) : r.add6('nat', 'ISTIO_OUTPUT', ...argv));
    if (inc.wildcard) {
      add('-j', 'ISTIO_REDIRECT');
      for (const i of split(o.kubeVirtInterfaces)) r.insert(family, 'nat', 'PREROUTING', 1, '-i', i, '-j', 'ISTIO_REDIRECT');
      continue;
    }
    for (const cidr of family === 'ipv4' ? inc.v4 : inc.v6) {
      for (const i of split(o.kubeVirtInterfaces)) r.insert(family, 'nat', 'PREROUTING', 1, '-i', i, '-d', cidr, '-j', 'ISTIO_REDIRECT');
      add('-d', cidr, '-j', 'ISTIO_REDIRECT');
    }
  }
}

/** TPROXY: marks that keep the proxy's own packets to the app from being captured again. */
function tproxyMarks(r: Rules, o: IstioOptions): void {
  r.add('mangle', 'PREROUTING', '-p', 'tcp', '-m', 'mark', '--mark', o.tproxyMark, '-j', 'CONNMARK', '--save-mark');
  r.add('mangle', 'OUTPUT', '-p', 'tcp', '-o', 'lo', '-m', 'mark', '--mark', o.tproxyMark, '-j', 'RETURN');
  for (const [flag, id] of [
    ...split(o.proxyUid).map((u) => ['--uid-owner', u]),
    ...split(o.proxyGid || o.proxyUid).map((g) => ['--gid-owner', g]),
  ])
    r.addVersioned(o.hostIpv4LoopbackCidr, LOOPBACK_V6, 'mangle', 'OUTPUT', '!', '-d', '@', '-p', 'tcp', '-o', 'lo', '-m', 'owner', flag, id,
      '-j', 'MARK', '--set-mark', OUTBOUND_MARK);
  r.add('mangle', 'OUTPUT', '-p', 'tcp', '-m', 'connmark', '--mark', o.tproxyMark, '-j', 'CONNMARK', '--restore-mark');
  r.insert('both', 'mangle', 'ISTIO_INBOUND', 1, '-p', 'tcp', '-m', 'mark', '--mark', o.tproxyMark, '-j', 'RETURN');
  r.insert('ipv4', 'mangle', 'ISTIO_INBOUND', 2, '-p', 'tcp', '-s', PASSTHROUGH.ipv4, '-i', 'lo', '-j', 'RETURN');
  r.insert('ipv6', 'mangle', 'ISTIO_INBOUND', 2, '-p', 'tcp', '-s', PASSTHROUGH.ipv6, '-i', 'lo', '-j', 'RETURN');
  r.insert('both', 'mangle', 'ISTIO_INBOUND', 3, '-p', 'tcp', '-i', 'lo', '-m', 'mark', '!', '--mark', OUTBOUND_MARK, '-j', 'RETURN');
}

/** Every rule Istio issues, in its order (which decides the order within each chain). */
function plan(o: IstioOptions, issues: Issue[]): Rules {
  const r = new Rules(o.ipv6);
  const exclude = ranges(o.outboundIpRangesExclude, '--istio-service-exclude-cidr', issues);
  const include = ranges(o.outboundIpRangesInclude, '--istio-service-cidr', issues);
  // DNS capture needs somewhere to send it: servers, or all of port 53
  const dns = o.redirectDns && (o.captureAllDns || o.dnsServersV4.length > 0 || o.dnsServersV6.length > 0);
  excludeInterfaces(r, o);
  kubeVirtReturn(r, o);
  dropInvalid(r, o);
  redirectChains(r, o);
  inboundCapture(r, o);
  r.add('nat', 'OUTPUT', '-j', 'ISTIO_OUTPUT');
  for (const p of split(o.outboundPortsExclude)) {
    r.add('nat', 'ISTIO_OUTPUT', '-p', 'tcp', '--dport', p, '-j', 'RETURN');
    r.add('nat', 'ISTIO_OUTPUT', '-p', 'udp', '--dport', p, '-j', 'RETURN');
  }
  r.addVersioned(PASSTHROUGH.ipv4, PASSTHROUGH.ipv6, 'nat', 'ISTIO_OUTPUT', '-o', 'lo', '-s', '@', '-j', 'RETURN');
  proxyOwners(r, o, dns, include.loopback);
  ownerGroups(r, o);
  if (dns) dnsCapture(r, o);
  r.addVersioned(o.hostIpv4LoopbackCidr, LOOPBACK_V6, 'nat', 'ISTIO_OUTPUT', '-d', '@', '-j', 'RETURN');
  for (const c of exclude.v4) r.add4('nat', 'ISTIO_OUTPUT', '-d', c, '-j', 'RETURN');
  for (const c of exclude.v6) r.add6('nat', 'ISTIO_OUTPUT', '-d', c, '-j', 'RETURN');
  for (const p of split(o.outboundPortsInclude)) r.add('nat', 'ISTIO_OUTPUT', '-p', 'tcp', '--dport', p, '-j', 'ISTIO_REDIRECT');
  outboundInclude(r, o, include);
  if (o.interceptionMode === 'TPROXY') tproxyMarks(r, o);
  return r;
}

/** What Istio owns in one table: its chains, and its rules in built-in chains (some inserted at the top). */
export interface IstioOwned {
  table: TableName;
  chains: Chain[];
  jumps: { from: string; rule: Rule; at?: 'top' }[];
}

/** The per-table owned sets of a generated ruleset; `top` names rules Istio inserts at position 1. */
export function istioOwned(rs: Ruleset, top: Set<string>): IstioOwned[] {
  return rs.tables.map((t) => ({
    table: t.name,
    chains: t.chains.filter((c) => !isBuiltin(t.name, c.name)),
    jumps: t.chains
      .filter((c) => isBuiltin(t.name, c.name))
      .flatMap((c) => c.rules.map((rule) => ({ from: c.name, rule, ...(top.has(ruleKey(t.name, c.name, rule, rs.family)) ? { at: 'top' as const } : {}) }))),
  }));
}

const ruleKey = (table: TableName, chain: string, r: Rule, family: Family) => `${table} ${chain}${saveRuleSpec(r, { family, numeric: true })}`;

/** Generate Istio's rules: one Ruleset per family (IPv6 only with `ipv6`). Issues name bad values. */
export function istioRules(o: IstioOptions, names?: NameTables): { v4: Ruleset; v6?: Ruleset; top: Set<string>; issues: Issue[] } {
  const issues = validateIstio(o, names);
  const top = new Set<string>();
  if (issues.length) return { v4: { family: 'ipv4', tables: [] }, top, issues };
  const r = plan(o, issues);
  const build = (family: Family): Ruleset => {
    const b = new RulesetBuilder(family);
    const ops = r.ops.filter((op) => op.family === family);
    // chains are created in order of first use, as Istio's restore text declares them
    const made = new Set<string>();
    for (const op of ops) {
      const key = `${op.table}:${op.chain}`;
      if (made.has(key) || isBuiltin(op.table, op.chain)) continue;
      made.add(key);
      b.apply(op.table, { op: 'new-chain', chain: op.chain }, 0, 1, issues);
    }
    for (const op of ops) {
      const argv = op.position === undefined ? ['-A', op.chain, ...op.argv] : ['-I', op.chain, String(op.position), ...op.argv];
      const p = parseCommand(argv.map((text, i) => ({ text, column: i + 1 })), { family, table: op.table, line: 0, names });
      issues.push(...p.issues.map((i) => ({ ...i, message: `${argv.join(' ')}: ${i.message}`, line: undefined, column: undefined })));
      if (p.command) b.apply(op.table, p.command, 0, 1, issues);
      if (p.command?.op === 'insert' && isBuiltin(op.table, op.chain))
        for (const r of p.command.rules) top.add(ruleKey(op.table, op.chain, r, family));
    }
    return b.build(issues);
  };
  const v4 = build('ipv4');
  return o.ipv6 ? { v4, v6: build('ipv6'), top, issues } : { v4, top, issues };
}
