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
import { putBytes, putNumber, putText, type LineBuffer } from './lines';
import type { Endpoint } from './model';
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
/** What a DNAT rule has between its other matches and its address, per protocol, as bytes. */
const DNAT_TAIL = {
  tcp: new TextEncoder().encode(`${PROTOCOL_MATCH.tcp} -j DNAT --to-destination `),
  udp: new TextEncoder().encode(`${PROTOCOL_MATCH.udp} -j DNAT --to-destination `),
  sctp: new TextEncoder().encode(`${PROTOCOL_MATCH.sctp} -j DNAT --to-destination `),
};

/**
 * Room for a rule's fixed words, chain names and numbers; its texts (addresses, comments, match
 * words) need three bytes per character besides. Each writer reserves the room for its whole
 * rule once and then writes piece by piece at a position it keeps (see putText).
 */
const RULE_ROOM = 512;

/** `-A ` at the start of a rule (stored directly: the shortest pieces cost more as a copy's call than as bytes). */
function dashA(b: Uint8Array, at: number): number {
  b[at] = 45;
  b[at + 1] = 65;
  b[at + 2] = 32;
  return at + 3;
}

/** ` -j ` before a target. */
function dashJ(b: Uint8Array, at: number): number {
  b[at] = 32;
  b[at + 1] = 45;
  b[at + 2] = 106;
  b[at + 3] = 32;
  return at + 4;
}

/** The room a rule needs whose texts have `characters` characters in all (comments twice over: an escaped quote takes two bytes). */
const room = (characters: number): number => RULE_ROOM + 6 * characters;

/** The length of an optional text (a number, not the text: the writers pass strings and bytes, which would make one helper see many shapes). */
const len = (s: string | undefined): number => (s === undefined ? 0 : s.length);

/** Write one rule line: `-A CHAIN` and the spec in saveRuleSpec's order (addresses, protocol, matches, target). */
export function writeRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, s: RuleSpec): void {
  const comment = s.comment;
  let commentLength = 0;
  if (typeof comment === 'string') commentLength = comment.length;
  else if (comment !== undefined) for (const p of comment) commentLength += p.length;
  out.reserve(room(len(s.source) + len(s.destination) + len(s.matches) + (typeof s.jump === 'string' ? s.jump.length : 0) + len(s.target) + commentLength));
  const b = out.bytes;
  let at = dashA(b, out.length);
  at = names.put(chain, b, at);
  if (s.source !== undefined) at = putAddress(b, at, ' -s ', s.source, !!s.notSource, family);
  if (s.destination !== undefined) at = putAddress(b, at, ' -d ', s.destination, !!s.notDestination, family);
  if (s.protocol) at = putText(b, at, PROTOCOL[s.protocol]);
  if (comment !== undefined) at = typeof comment === 'string' ? putComment(b, at, comment, '', undefined) : putCommentParts(b, at, comment);
  if (s.matches) at = putText(b, at, s.matches);
  if (s.protocol && s.dport !== undefined) {
    at = putText(b, at, PROTOCOL_MATCH[s.protocol]);
    at = putText(b, at, ' --dport ');
    at = putNumber(b, at, s.dport);
  }
  if (s.jump !== undefined && s.jump !== '') {
    at = dashJ(b, at);
    at = typeof s.jump === 'number' ? names.put(s.jump, b, at) : putText(b, at, s.jump);
  } else if (s.target) at = putText(b, at, s.target);
  b[at] = 10;
  out.length = at + 1;
}

/**
 * `-A CHAIN [-s SOURCE] [COMMENT] [MATCHES] -j TARGET` as writeRule writes it, from arguments: the
 * rules of KUBE-SVC and KUBE-SEP chains, three per endpoint. Builders' spec objects come in a
 * dozen shapes, which makes every property read in writeRule a megamorphic lookup; these rules
 * are most of a node's. The comment is `comment`, then ` -> IP:PORT` of `endpoint` if given.
 */
export function writeJumpRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, source: string | undefined, comment: string | undefined, endpoint: Endpoint | undefined, matches: Uint8Array | undefined, jump: ChainId | string): void {
  out.reserve(room(len(source) + len(comment) + (endpoint === undefined ? 0 : endpoint.ip.length) + (matches === undefined ? 0 : matches.length) + (typeof jump === 'string' ? jump.length : 0)));
  const b = out.bytes;
  let at = dashA(b, out.length);
  at = names.put(chain, b, at);
  if (source !== undefined) at = putAddress(b, at, ' -s ', source, false, family);
  if (comment !== undefined) at = putComment(b, at, comment, '', endpoint);
  if (matches !== undefined) at = putBytes(b, at, matches);
  at = dashJ(b, at);
  at = typeof jump === 'number' ? names.put(jump, b, at) : putText(b, at, jump);
  b[at] = 10;
  out.length = at + 1;
}

/** `-A CHAIN -d ADDRESS -p PROTO COMMENT -m PROTO --dport PORT -j TARGET` as writeRule writes it (see writeJumpRule): a Service address's dispatch rule, one per port and address. The comment is `comment` then `suffix`. */
export function writeServiceRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, destination: string, protocol: Protocol, comment: string, suffix: string, dport: number, jump: ChainId): void {
  out.reserve(room(destination.length + comment.length + suffix.length));
  const b = out.bytes;
  let at = dashA(b, out.length);
  at = names.put(chain, b, at);
  at = putAddress(b, at, ' -d ', destination, false, family);
  at = putText(b, at, PROTOCOL[protocol]);
  at = putComment(b, at, comment, suffix, undefined);
  at = putText(b, at, PROTOCOL_MATCH[protocol]);
  at = putText(b, at, ' --dport ');
  at = putNumber(b, at, dport);
  at = dashJ(b, at);
  at = names.put(jump, b, at);
  b[at] = 10;
  out.length = at + 1;
}

/**
 * `-A CHAIN -p PROTO [COMMENT] [MATCHES] -m PROTO -j DNAT --to-destination ADDRESS:PORT` (a DNAT
 * rule with `-p` loads its protocol match): the last rule of a KUBE-SEP chain.
 */
export function writeDnatRule(out: LineBuffer, names: ChainNames, family: Family, chain: ChainId, protocol: Protocol, comment: string | undefined, matches: string, ip: string, port: number): void {
  out.reserve(room(len(comment) + matches.length + ip.length));
  const b = out.bytes;
  let at = dashA(b, out.length);
  at = names.put(chain, b, at);
  if (comment !== undefined || matches !== '') {
    at = putText(b, at, PROTOCOL[protocol]);
    if (comment !== undefined) at = putComment(b, at, comment, '', undefined);
    at = putText(b, at, matches);
    at = putBytes(b, at, DNAT_TAIL[protocol]);
  } else at = putBytes(b, at, DNAT_HEAD[protocol]);
  if (family === 'ipv6') b[at++] = 91;
  at = putText(b, at, family === 'ipv4' && canonicalQuad(ip) ? ip : ipText(ip, family));
  if (family === 'ipv6') b[at++] = 93;
  b[at++] = 58;
  at = putNumber(b, at, port);
  b[at] = 10;
  out.length = at + 1;
}

/** `[!] flag ADDRESS/PREFIX`; iptables-save leaves out the any-address unless it is negated. */
function putAddress(b: Uint8Array, at: number, flag: string, text: string, invert: boolean, family: Family): number {
  const host = family === 'ipv4' && canonicalQuad(text);
  const t = host ? text : cidrText(text, family);
  if (!invert && (t === '0.0.0.0/0' || t === '::/0')) return at;
  if (invert) at = putText(b, at, ' !');
  at = putText(b, at, flag);
  at = putText(b, at, t);
  return host ? putText(b, at, '/32') : at;
}

// How xtables_save_string prints a text: bare, quoted, or quoted with escapes.
const BARE = 0;
const QUOTED = 1;
const ESCAPED = 2;

/** The quoting of a text whose earlier parts need `q`, once `s` follows them. */
function quoting(s: string, q: number): number {
  if (q === ESCAPED) return q;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 34 || c === 39 || c === 92) return ESCAPED;
    // saveString leaves [-_0-9a-zA-Z]+ bare.
    if (!(c === 45 || c === 95 || (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122))) q = QUOTED;
  }
  return q;
}

const encoder = new TextEncoder();
const COMMENT_BARE = encoder.encode(' -m comment --comment ');
const COMMENT_QUOTED = encoder.encode(' -m comment --comment "');
const ARROW = ' -> ';

/** `ip:port`, IPv6 in brackets, as endpoints are shown in comments (Endpoint.text, not made). */
function putEndpoint(b: Uint8Array, at: number, e: Endpoint): number {
  const v6 = e.ip.includes(':');
  if (v6) b[at++] = 91;
  at = putText(b, at, e.ip);
  if (v6) b[at++] = 93;
  b[at++] = 58;
  return putNumber(b, at, e.port);
}

/**
 * `-m comment --comment TEXT` for TEXT = `text` + `suffix` (+ ` -> IP:PORT` of `endpoint`), quoted
 * as saveString quotes the whole (a test holds them equal), without making TEXT.
 */
function putComment(b: Uint8Array, at: number, text: string, suffix: string, endpoint: Endpoint | undefined): number {
  let q = quoting(suffix, quoting(text, BARE));
  // An endpoint's text has dots or colons: it is quoted at least.
  if (endpoint !== undefined && q === BARE) q = QUOTED;
  if (q === BARE && text.length + suffix.length === 0) q = QUOTED;
  if (q === ESCAPED) return putText(b, at, commentMatch(text + suffix + (endpoint === undefined ? '' : ARROW + endpoint.text)));
  at = putBytes(b, at, q === BARE ? COMMENT_BARE : COMMENT_QUOTED);
  at = putText(b, at, text);
  at = putText(b, at, suffix);
  if (endpoint !== undefined) at = putEndpoint(b, putText(b, at, ARROW), endpoint);
  if (q === QUOTED) b[at++] = 34;
  return at;
}

/** putComment of a text given as any number of parts. */
function putCommentParts(b: Uint8Array, at: number, parts: readonly string[]): number {
  let q = BARE;
  let length = 0;
  for (const p of parts) {
    q = quoting(p, q);
    length += p.length;
  }
  if (length === 0 && q === BARE) q = QUOTED;
  if (q === ESCAPED) return putText(b, at, commentMatch(parts.join('')));
  at = putBytes(b, at, q === BARE ? COMMENT_BARE : COMMENT_QUOTED);
  for (const p of parts) at = putText(b, at, p);
  if (q === QUOTED) b[at++] = 34;
  return at;
}

/** `-m comment --comment TEXT` from the parts of TEXT, quoted as saveString quotes the whole (a test holds them equal). */
export function writeComment(out: LineBuffer, comment: string | readonly string[]): void {
  const parts = typeof comment === 'string' ? [comment] : comment;
  let n = 0;
  for (const p of parts) n += p.length;
  out.reserve(64 + 6 * n);
  out.length = putCommentParts(out.bytes, out.length, parts);
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
