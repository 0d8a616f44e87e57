/**
 * Linkerd's proxy-init as a generator: flags → validated options → the nat chains upstream leaves
 * (PROXY_INIT_REDIRECT, PROXY_INIT_OUTPUT and one jump from PREROUTING and OUTPUT each), as model
 * values. The rule shapes and their iptables-save text were read back from the kernel (iptables
 * 1.8.9, legacy and nft) after running upstream's own iptables commands in a namespace.
 */
import { parseCidr, type Cidr, type Family } from '../model/addr';
import type { Issue } from '../model/issue';
import { emptyTable, type Chain, type MatchInstance, type Rule, type Ruleset, type Target } from '../model/ruleset';
import type { CommentInfo } from '../extensions/comment';
import type { MultiportInfo } from '../extensions/multiport';
import type { OwnerInfo } from '../extensions/owner';
import type { RedirectInfo } from '../extensions/nat';
import type { TcpInfo } from '../extensions/tcp';

/** The inbound chain, jumped to from PREROUTING. */
export const REDIRECT_CHAIN = 'PROXY_INIT_REDIRECT';
/** The outbound chain, jumped to from OUTPUT. */
export const OUTPUT_CHAIN = 'PROXY_INIT_OUTPUT';
/** xt_multiport's limit: ports plus range ends per rule (a range takes two slots). */
export const MULTIPORT_MAX_PORTS = 15;
/** Every comment upstream writes starts with this. */
export const COMMENT_PREFIX = 'proxy-init/';

/** A port or an inclusive range of ports. */
export interface PortSpan {
  lo: number;
  hi: number;
}

/** A subnet to ignore: the text as typed (upstream's comment keeps it) and its parsed value. */
export interface Subnet {
  text: string;
  cidr: Cidr;
}

/** Validated options of `init linkerd` that decide the rules (how to apply them is elsewhere). */
export interface LinkerdOptions {
  incomingProxyPort: number;
  outgoingProxyPort: number;
  /** Traffic of this uid skips the proxy; absent (upstream: -1 or 0) for none. */
  proxyUid?: number;
  proxyGid?: number;
  /** Inbound ports sent to the proxy; empty means all TCP. */
  portsToRedirect: number[];
  inboundPortsToIgnore: PortSpan[];
  outboundPortsToIgnore: PortSpan[];
  /** Sources whose inbound traffic skips the proxy, both families mixed. */
  subnetsToIgnore: Subnet[];
}

/** The flags as given on the command line (strings; lists may hold comma-separated items). */
export interface LinkerdFlags {
  incomingProxyPort?: string;
  outgoingProxyPort?: string;
  proxyUid?: string;
  proxyGid?: string;
  portsToRedirect?: string[];
  inboundPortsToIgnore?: string[];
  outboundPortsToIgnore?: string[];
  subnetsToIgnore?: string[];
}

/** The chart's defaults, as the injector passes them to linkerd-init. */
export const CHART_DEFAULT_ARGS: readonly string[] = [
  '--incoming-proxy-port', '4143', '--outgoing-proxy-port', '4140', '--proxy-uid', '2102',
  '--inbound-ports-to-ignore', '4190,4191,4567,4568', '--outbound-ports-to-ignore', '4567,4568',
];

// ---------------------------------------------------------------------------------------------
// Validation: every value is checked before anything is applied (upstream logs and skips a bad
// ignore-port and only notices a bad subnet when ip6tables refuses it half-way).

const err = (option: string, message: string): Issue => ({ severity: 'error', code: 'invalid-flag', option, message });

/** Split pflag-style list values: repeated flags and comma-separated items, blanks trimmed. */
export function splitList(values: string[] | undefined): string[] {
  return (values ?? []).flatMap((v) => v.split(',')).map((s) => s.trim()).filter((s) => s !== '');
}

function parseInteger(text: string): number | null {
  return /^[+-]?\d+$/.test(text.trim()) ? Number(text.trim()) : null;
}

function portValue(option: string, text: string, min: number, issues: Issue[]): number | undefined {
  const n = parseInteger(text);
  if (n === null || n < min || n > 65535) {
    issues.push(err(option, `--${option}: invalid port "${text}" (expected a number from ${min} to 65535)`));
    return undefined;
  }
  return n;
}

/** Parse `P` or `LO-HI` as upstream's ParsePortRange does (0-65535, LO ≤ HI). */
export function parsePortSpan(text: string): PortSpan | string {
  const m = /^(\d+)(?:-(\d+))?$/.exec(text);
  if (!m) return `invalid port or range "${text}" (expected PORT or LOW-HIGH)`;
  const lo = Number(m[1]);
  const hi = m[2] === undefined ? lo : Number(m[2]);
  if (lo > 65535 || hi > 65535) return `port out of range in "${text}" (0-65535)`;
  if (lo > hi) return `invalid range "${text}": ${hi} is below ${lo}`;
  return { lo, hi };
}

function idValue(option: string, text: string | undefined, issues: Issue[]): number | undefined {
  if (text === undefined) return undefined;
  const n = parseInteger(text);
  if (n === null || n < -1 || n > 0xfffffffe) {
    issues.push(err(option, `--${option}: invalid id "${text}" (expected -1 for none, or 0 to 4294967294)`));
    return undefined;
  }
  // upstream adds the owner rule only for ids above 0, so 0 and -1 both mean "none"
  return n > 0 ? n : undefined;
}

/** Parse a subnet as upstream's net.ParseCIDR accepts it: an address of either family and a prefix. */
export function parseSubnet(text: string): Subnet | string {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(text);
  if (!m) return `invalid subnet "${text}" (expected ADDRESS/PREFIX, e.g. 10.0.0.0/8 or fd00::/8)`;
  const family: Family = m[1].includes(':') ? 'ipv6' : 'ipv4';
  const c = parseCidr(text, family);
  if (typeof c === 'string') return `invalid subnet "${text}": ${c.replace(/`|'/g, '"')}`;
  return { text, cidr: c };
}

/** Validate the flags; options are returned only when there is no error. */
export function validateLinkerdFlags(f: LinkerdFlags): { options?: LinkerdOptions; issues: Issue[] } {
  const issues: Issue[] = [];
  const need = (option: string, v: string | undefined) => {
    if (v === undefined || v.trim() === '-1') {
      issues.push(err(option, `--${option} is required (a port from 1 to 65535)`));
      return undefined;
    }
    return portValue(option, v, 1, issues);
  };
  const incoming = need('incoming-proxy-port', f.incomingProxyPort);
  const outgoing = need('outgoing-proxy-port', f.outgoingProxyPort);
  const proxyUid = idValue('proxy-uid', f.proxyUid, issues);
  const proxyGid = idValue('proxy-gid', f.proxyGid, issues);
  const portsToRedirect: number[] = [];
  for (const p of splitList(f.portsToRedirect)) {
    const v = portValue('ports-to-redirect', p, 1, issues);
    if (v !== undefined) portsToRedirect.push(v);
  }
  const spans = (option: string, list: string[] | undefined): PortSpan[] =>
    splitList(list).flatMap((t) => {
      const s = parsePortSpan(t);
      if (typeof s === 'string') {
        issues.push(err(option, `--${option}: ${s}`));
        return [];
      }
      return [s];
    });
  const inboundPortsToIgnore = spans('inbound-ports-to-ignore', f.inboundPortsToIgnore);
  const outboundPortsToIgnore = spans('outbound-ports-to-ignore', f.outboundPortsToIgnore);
  const subnetsToIgnore: Subnet[] = [];
  for (const t of splitList(f.subnetsToIgnore)) {
    const s = parseSubnet(t);
    if (typeof s === 'string') issues.push(err('subnets-to-ignore', `--subnets-to-ignore: ${s}`));
    else subnetsToIgnore.push(s);
  }
  if (issues.length || incoming === undefined || outgoing === undefined) return { issues };
  return {
    issues,
    options: { incomingProxyPort: incoming, outgoingProxyPort: outgoing, proxyUid, proxyGid, portsToRedirect, inboundPortsToIgnore, outboundPortsToIgnore, subnetsToIgnore },
  };
}

// ---------------------------------------------------------------------------------------------
// Rule builders: one per rule kind upstream writes.

const comment = (name: string): MatchInstance => ({ kind: 'match', name: 'comment', info: { comment: COMMENT_PREFIX + name } satisfies CommentInfo });
const RETURN: Target = { kind: 'standard', verdict: 'RETURN' };
const tcpProto = { value: 'tcp', invert: false };
const redirectTo = (port: number): Target => ({ kind: 'extension', name: 'REDIRECT', info: { ports: [port, port], random: false } satisfies RedirectInfo });

/** Group ports into multiport lists of at most 15 slots, a range taking two, input order kept. */
export function multiportChunks(spans: PortSpan[]): PortSpan[][] {
  const chunks: PortSpan[][] = [];
  let cur: PortSpan[] = [];
  let slots = 0;
  for (const s of spans) {
    const n = s.lo === s.hi ? 1 : 2;
    if (slots + n > MULTIPORT_MAX_PORTS) {
      chunks.push(cur);
      cur = [];
      slots = 0;
    }
    cur.push(s);
    slots += n;
  }
  if (cur.length) chunks.push(cur);
  return chunks;
}

/** A span as multiport and upstream's comment write it: `P` or `L:U`. */
export const spanText = (s: PortSpan): string => (s.lo === s.hi ? `${s.lo}` : `${s.lo}:${s.hi}`);

/** `-p tcp -m multiport --dports … -m comment --comment proxy-init/ignore-port-… -j RETURN`. */
export function ignorePorts(chunk: PortSpan[]): Rule {
  const info: MultiportInfo = { which: 'dports', invert: false, ports: chunk.map((s) => [s.lo, s.hi]) };
  return { protocol: tcpProto, matches: [{ kind: 'match', name: 'multiport', info }, comment(`ignore-port-${chunk.map(spanText).join(',')}`)], target: RETURN };
}

/** `-s SUBNET -m comment --comment proxy-init/ignore-subnet-<as typed> -j RETURN`. */
export function ignoreSubnet(s: Subnet): Rule {
  return { source: { value: s.cidr, invert: false }, matches: [comment(`ignore-subnet-${s.text}`)], target: RETURN };
}

/** Every inbound TCP segment to the proxy's inbound port. */
export function redirectAllIncoming(port: number): Rule {
  return { protocol: tcpProto, matches: [comment('redirect-all-incoming-to-proxy-port')], target: redirectTo(port) };
}

/** `-p tcp -m tcp --dport P … -j REDIRECT --to-ports PROXY` (one per `--ports-to-redirect` port). */
export function redirectPort(port: number, proxyPort: number): Rule {
  const tcp: TcpInfo = { dport: { min: port, max: port, invert: false } };
  return { protocol: tcpProto, matches: [{ kind: 'match', name: 'tcp', info: tcp }, comment(`redirect-port-${port}-to-proxy-port`)], target: redirectTo(proxyPort) };
}

/** The proxy's own connections (by uid) leave untouched. */
export function ignoreProxyUid(uid: number): Rule {
  const info: OwnerInfo = { uid: { min: uid, max: uid, invert: false } };
  return { matches: [{ kind: 'match', name: 'owner', info }, comment('ignore-proxy-user-id')], target: RETURN };
}

/** The proxy's own connections (by gid) leave untouched. */
export function ignoreProxyGid(gid: number): Rule {
  const info: OwnerInfo = { gid: { min: gid, max: gid, invert: false } };
  return { matches: [{ kind: 'match', name: 'owner', info }, comment('ignore-proxy-group-id')], target: RETURN };
}

/** Traffic routed out through lo (127/8 and the pod's own addresses) goes straight to its socket. */
export function ignoreLoopback(): Rule {
  return { outInterface: { value: 'lo', invert: false }, matches: [comment('ignore-loopback')], target: RETURN };
}

/** Every other outbound TCP connection to the proxy's outbound port. */
export function redirectAllOutgoing(port: number): Rule {
  return { protocol: tcpProto, matches: [comment('redirect-all-outgoing-to-proxy-port')], target: redirectTo(port) };
}

/** A commented jump from a built-in chain to one of ours. */
export function installJump(chain: string, name: string): Rule {
  return { matches: [comment(name)], target: { kind: 'jump', chain } };
}

// ---------------------------------------------------------------------------------------------
// Chains and jumps.

/** PROXY_INIT_REDIRECT: ignored ports, ignored source subnets of this family, then the redirect. */
export function redirectChain(o: LinkerdOptions, family: Family): Chain {
  const rules = [
    ...multiportChunks(o.inboundPortsToIgnore).map(ignorePorts),
    ...o.subnetsToIgnore.filter((s) => s.cidr.family === family).map(ignoreSubnet),
    ...(o.portsToRedirect.length
      ? o.portsToRedirect.map((p) => redirectPort(p, o.incomingProxyPort))
      : [redirectAllIncoming(o.incomingProxyPort)]),
  ];
  return { name: REDIRECT_CHAIN, rules };
}

/** PROXY_INIT_OUTPUT: the proxy's uid and gid, loopback, ignored ports, then the redirect. */
export function outputChain(o: LinkerdOptions): Chain {
  const rules = [
    ...(o.proxyUid !== undefined ? [ignoreProxyUid(o.proxyUid)] : []),
    ...(o.proxyGid !== undefined ? [ignoreProxyGid(o.proxyGid)] : []),
    ignoreLoopback(),
    ...multiportChunks(o.outboundPortsToIgnore).map(ignorePorts),
    redirectAllOutgoing(o.outgoingProxyPort),
  ];
  return { name: OUTPUT_CHAIN, rules };
}

/** Which built-in chain jumps to which of ours, with upstream's comment: wiring as data. */
export const LINKERD_JUMPS: readonly { from: 'PREROUTING' | 'OUTPUT'; to: string; comment: string }[] = [
  { from: 'PREROUTING', to: REDIRECT_CHAIN, comment: 'install-proxy-init-prerouting' },
  { from: 'OUTPUT', to: OUTPUT_CHAIN, comment: 'install-proxy-init-output' },
];

/** What init owns in one family's nat table: our chains and the jumps into them. */
export interface LinkerdPlan {
  table: 'nat';
  chains: Chain[];
  jumps: { from: string; rule: Rule }[];
}

/** The chains and jumps `init linkerd` installs for one family. */
export function linkerdPlan(o: LinkerdOptions, family: Family): LinkerdPlan {
  return {
    table: 'nat',
    chains: [redirectChain(o, family), outputChain(o)],
    jumps: LINKERD_JUMPS.map((j) => ({ from: j.from, rule: installJump(j.to, j.comment) })),
  };
}

/** The nat table a fresh namespace holds after init, as a ruleset (what iptables-save prints). */
export function linkerdRuleset(o: LinkerdOptions, family: Family): Ruleset {
  const plan = linkerdPlan(o, family);
  const nat = emptyTable('nat');
  for (const j of plan.jumps) nat.chains.find((c) => c.name === j.from)!.rules.push(j.rule);
  nat.chains.push(...plan.chains);
  return { family, tables: [nat] };
}
