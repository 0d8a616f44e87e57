/**
 * The text of kube-proxy's rules, written directly in iptables-save's canonical form (option
 * order, `/32` on addresses, quoted comments, the kernel's spelling of each extension's words), so
 * that the save form, kube-proxy's restore input and a partial sync are all cut from the same
 * lines. kube-proxy itself writes its restore input as text for the same reason: at 30,000
 * Services a model value per rule, match and target cost more than the kernel took to load them.
 * Tests hold the text to the model: parsing it with syntax/restore and printing it back with
 * syntax/save must give it back unchanged, and the kernel must save it byte for byte.
 */
import { formatCidr, parseCidr, type Family } from '../../model/addr';
import { saveString } from '../../extensions/util';
import type { LineBuffer } from './lines';
import type { ChainId, ChainNames } from './names';

/**
 * The fields of one rule, in the words kube-proxy uses. Text that varies per rule (addresses,
 * comments, the DNAT destination) is given in parts and written part by part: a string built with
 * `+` is a tree that has to be flattened before its characters can be read, which cost more than
 * writing the parts.
 */
export interface RuleSpec {
  /** The comment, or the parts it is made of. */
  comment?: string | readonly string[];
  protocol?: Protocol;
  /** `-s` address or CIDR as given (printed as iptables-save prints it; left out for the any-address). */
  source?: string;
  notSource?: boolean;
  /** `-d` address or CIDR as given. */
  destination?: string;
  notDestination?: boolean;
  /** Match text after the comment (and before the protocol match when `dport` is set). */
  matches?: string;
  /** Adds `-m <protocol> --dport N` after `matches`. */
  dport?: number;
  /** `-j CHAIN`: a chain of the node's ChainNames, or a built-in verdict as text. */
  jump?: ChainId | string;
  /** Any other target, as text (` -j MARK --set-xmark …`). */
  target?: string;
}

/** The protocols of Service ports. */
export type Protocol = 'tcp' | 'udp' | 'sctp';

const PROTOCOL = { tcp: ' -p tcp', udp: ' -p udp', sctp: ' -p sctp' };
const PROTOCOL_MATCH = { tcp: ' -m tcp', udp: ' -m udp', sctp: ' -m sctp' };
/** What a DNAT rule without other matches has between its chain and its address, per protocol, as bytes. */
const DNAT_HEAD = {
  tcp: new TextEncoder().encode(`${PROTOCOL.tcp}${PROTOCOL_MATCH.tcp} -j DNAT --to-destination `),
  udp: new TextEncoder().encode(`${PROTOCOL.udp}${PROTOCOL_MATCH.udp} -j DNAT --to-destination `),
  sctp: new TextEncoder().encode(`${PROTOCOL.sctp}${PROTOCOL_MATCH.sctp} -j DNAT --to-destination `),
};

/** Write one rule line: `-A CHAIN` and the spec in saveRuleSpec's order (addresses, protocol, matches, target). */
export function writeRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, s: RuleSpec): void {
  out.write('-A ');
  names.write(chain, out);
  if (s.source !== undefined) writeAddress(out, ' -s ', s.source, !!s.notSource, family);
  if (s.destination !== undefined) writeAddress(out, ' -d ', s.destination, !!s.notDestination, family);
  if (s.protocol) out.write(PROTOCOL[s.protocol]);
  if (s.comment !== undefined) writeComment(out, s.comment);
  if (s.matches) out.write(s.matches);
  if (s.protocol && s.dport !== undefined) {
    out.write(PROTOCOL_MATCH[s.protocol]);
    out.write(' --dport ');
    out.writeNumber(s.dport);
  }
  if (s.jump !== undefined && s.jump !== '') {
    out.write(' -j ');
    if (typeof s.jump === 'number') names.write(s.jump, out);
    else out.write(s.jump);
  } else if (s.target) out.write(s.target);
  out.write('\n');
}

/**
 * `-A CHAIN [-s SOURCE] [COMMENT] [MATCHES] -j TARGET` as writeRule writes it, from arguments: the
 * rules of KUBE-SVC and KUBE-SEP chains, three per endpoint. Builders' spec objects come in a
 * dozen shapes, which makes every property read in writeRule a megamorphic lookup; these rules
 * are most of a node's.
 */
export function writeJumpRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, source: string | undefined, comment: string | readonly string[] | undefined, matches: string | Uint8Array | undefined, jump: ChainId | string): void {
  out.write('-A ');
  names.write(chain, out);
  if (source !== undefined) writeAddress(out, ' -s ', source, false, family);
  if (comment !== undefined) writeComment(out, comment);
  if (typeof matches === 'string') out.write(matches);
  else if (matches !== undefined) out.copy(matches, 0, matches.length);
  out.write(' -j ');
  if (typeof jump === 'number') names.write(jump, out);
  else out.write(jump);
  out.write('\n');
}

/** `-A CHAIN -d ADDRESS -p PROTO COMMENT -m PROTO --dport PORT -j TARGET` as writeRule writes it (see writeJumpRule): a Service address's dispatch rule, one per port and address. */
export function writeServiceRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, destination: string, protocol: Protocol, comment: string | readonly string[], dport: number, jump: ChainId): void {
  out.write('-A ');
  names.write(chain, out);
  writeAddress(out, ' -d ', destination, false, family);
  out.write(PROTOCOL[protocol]);
  writeComment(out, comment);
  out.write(PROTOCOL_MATCH[protocol]);
  out.write(' --dport ');
  out.writeNumber(dport);
  out.write(' -j ');
  names.write(jump, out);
  out.write('\n');
}

/** `-A CHAIN -p PROTO [MATCHES] -m PROTO -j DNAT --to-destination ADDRESS:PORT` (a DNAT rule with `-p` loads its protocol match): the last rule of a KUBE-SEP chain. */
export function writeDnatRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, protocol: Protocol, matches: string, ip: string, port: number): void {
  out.write('-A ');
  names.write(chain, out);
  if (matches) {
    out.write(PROTOCOL[protocol]);
    out.write(matches);
    out.write(PROTOCOL_MATCH[protocol]);
    out.write(' -j DNAT --to-destination ');
  } else {
    const head = DNAT_HEAD[protocol];
    out.copy(head, 0, head.length);
  }
  if (family === 'ipv6') out.write('[');
  writeIP(out, ip, family);
  out.write(family === 'ipv6' ? ']:' : ':');
  out.writeNumber(port);
  out.write('\n');
}

/** `[!] flag ADDRESS/PREFIX`; iptables-save leaves out the any-address unless it is negated. */
function writeAddress(out: LineBuffer, flag: string, text: string, invert: boolean, family: Family): void {
  const host = family === 'ipv4' && canonicalQuad(text);
  const t = host ? text : cidrText(text, family);
  if (!invert && (t === '0.0.0.0/0' || t === '::/0')) return;
  out.write(invert ? ' !' + flag : flag);
  out.write(t);
  if (host) out.write('/32');
}

function writeIP(out: LineBuffer, text: string, family: Family): void {
  out.write(family === 'ipv4' && canonicalQuad(text) ? text : ipText(text, family));
}

// How xtables_save_string prints a text: bare, quoted, or quoted with escapes.
const BARE = 0;
const QUOTED = 1;
const ESCAPED = 2;

function quoting(s: string, q: number): number {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 39 || c === 92) return ESCAPED;
    // saveString leaves [-_0-9a-zA-Z]+ bare.
    if (!(c === 45 || c === 95 || (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122))) q = QUOTED;
  }
  return q;
}

/** `-m comment --comment TEXT` from the parts of TEXT, quoted as saveString quotes the whole (a test holds them equal). */
export function writeComment(out: LineBuffer, comment: string | readonly string[]): void {
  const parts = typeof comment === 'string' ? [comment] : comment;
  let q = BARE;
  let length = 0;
  for (const p of parts) {
    q = quoting(p, q);
    length += p.length;
    if (q === ESCAPED) break;
  }
  if (length === 0 && q === BARE) q = QUOTED;
  if (q === ESCAPED) {
    out.write(commentMatch(parts.join('')));
    return;
  }
  out.write(q === BARE ? ' -m comment --comment ' : ' -m comment --comment "');
  for (const p of parts) out.write(p);
  if (q === QUOTED) out.write('"');
}

/** `-m comment --comment TEXT`, quoted as xtables_save_string quotes it. */
export const commentMatch = (text: string): string => ' -m comment --comment' + saveString(text);

/** `-m addrtype --src-type LOCAL` or `--dst-type LOCAL`. */
export const addrtypeLocal = (dir: 'src' | 'dst'): string => ` -m addrtype --${dir}-type LOCAL`;

/** `-m conntrack [!] --ctstate STATES` (states in the kernel's order: INVALID,NEW,RELATED,ESTABLISHED,…,DNAT). */
export const ctstate = (states: string, invert = false): string => ` -m conntrack${invert ? ' !' : ''} --ctstate ${states}`;

/** `-m mark [!] --mark MARK/MARK`. */
export const markMatch = (mark: string, invert = false): string => ` -m mark${invert ? ' !' : ''} --mark ${mark}/${mark}`;

/** `-j MARK --set-xmark VALUE/MASK` (kube-proxy's --or-mark M is --set-xmark M/M, --xor-mark M is M/0x0). */
export const setXmark = (value: string, mask: string): string => ` -j MARK --set-xmark ${value}/${mask}`;

const v4Cache = new Map<string, string>();
const v6Cache = new Map<string, string>();
const CACHE_LIMIT = 100_000;

/** Whether `s` is a dotted quad as inet_ntop prints it (no leading zeros, octets ≤ 255). */
function canonicalQuad(s: string): boolean {
  let dots = 0;
  let digits = 0;
  let octet = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || ++dots > 3) return false;
      digits = octet = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits === 1 && octet === 0) return false;
      octet = octet * 10 + c - 48;
      if (++digits > 3 || octet > 255) return false;
    } else return false;
  }
  return dots === 3 && digits > 0;
}

/**
 * An address or CIDR as iptables-save prints `-s`/`-d`: `/32` (`/128`) on a host, the network of
 * a CIDR (the kernel masks `192.168.1.5/16` to `192.168.0.0/16`), IPv6 as inet_ntop writes it.
 */
function cidrText(text: string, family: Family): string {
  // Almost every address a node has is a plain IPv4 host: no parsing needed to print it back.
  if (family === 'ipv4' && canonicalQuad(text)) return text + '/32';
  const cache = family === 'ipv4' ? v4Cache : v6Cache;
  let t = cache.get(text);
  if (t === undefined) {
    const c = parseCidr(text, family);
    if (typeof c === 'string') throw new Error(`kube-proxy generator: ${text}: ${c}`);
    t = formatCidr(c);
    if (cache.size > CACHE_LIMIT) cache.clear();
    cache.set(text, t);
  }
  return t;
}

/** An address as inet_ntop prints it (DNAT's `--to-destination`). */
function ipText(ip: string, family: Family): string {
  if (family === 'ipv4' && canonicalQuad(ip)) return ip;
  const t = cidrText(ip, family);
  return t.slice(0, t.lastIndexOf('/'));
}
