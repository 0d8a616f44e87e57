/**
 * The option column of an `iptables -L` line read back into iptables arguments: one reverse
 * parser per extension, keyed by the extension's name, each recognising the text that
 * extension's print function writes (in both the `-n` and the named form). The arguments then
 * go through parseCommand and the registry like any command line, so the model is built by the
 * extensions themselves. The texts were taken from iptables 1.8.9's own -L output.
 */
import { parseIP, type Family } from '../model/addr';
import type { NameTables } from '../extensions/types';
import { SERVICES } from '../extensions/util';

/** What a reverse parser gives back: the words to add to the command, and any doubt it has. */
export interface Unlisted {
  args: string[];
  /**
   * A name that could not be turned back into a number. The arguments then hold the name itself,
   * which iptables-restore resolves (getservbyname, getpwnam) on a host that knows it.
   */
  problem?: string;
  /** The target's real name when the listing shows another (`-j NOTRACK` lists as `CT` with text `NOTRACK`). */
  target?: string;
}

/** What the reverse parsers may look up. */
export interface UnlistContext {
  family: Family;
  protocol?: string;
  names?: NameTables;
  /** The rule's target name, for the target's own text (`to:` is DNAT's or SNAT's). */
  target?: string;
}

type Parser = (m: RegExpExecArray, ctx: UnlistContext) => Unlisted;

/** A port name back to its number: the caller's services table first, then the netbase names. */
export function unlistPort(text: string, proto: string, names?: NameTables): string | undefined {
  if (/^\d+$/.test(text)) return text;
  for (const [k, v] of names?.services ?? []) if (v === text && k.endsWith(`/${proto}`)) return k.split('/')[0];
  const n = SERVICES[text];
  return n === undefined ? undefined : String(n);
}

const TCP_FLAGS = ['FIN', 'SYN', 'RST', 'PSH', 'ACK', 'URG'];
/** `0x17` (the -n form) to `FIN,SYN,RST,ACK`; names pass through. */
function flagNames(text: string): string {
  if (!/^0x[0-9a-fA-F]+$/.test(text)) return text;
  const v = parseInt(text, 16);
  const names = TCP_FLAGS.filter((_, k) => v & (1 << k));
  return names.length ? names.join(',') : 'NONE';
}

/** `spt:X`, `dpts:!A:B` items of tcp and udp. */
function portItems(items: string, proto: string, names?: NameTables): Unlisted {
  const args: string[] = [];
  let problem: string | undefined;
  for (const it of items.trim().split(/\s+/).filter(Boolean)) {
    const m = /^(spt|dpt)s?:(!?)([^:]+)(?::(.+))?$/.exec(it)!;
    const port = (name: string) => {
      const n = unlistPort(name, proto, names);
      if (n === undefined) problem = `port name \`${name}' is not known`;
      return n ?? name;
    };
    const lo = port(m[3]), hi = m[4] === undefined ? undefined : port(m[4]);
    if (m[2]) args.push('!');
    args.push(m[1] === 'spt' ? '--sport' : '--dport', hi === undefined ? lo : `${lo}:${hi}`);
  }
  return { args, problem };
}

const bang = (s: string | undefined): string[] => (s && s.includes('!') ? ['!'] : []);

/** An owner name back to its id. */
function unlistId(text: string, map?: Map<string, string>): string | undefined {
  if (/^\d+(-\d+)?$/.test(text)) return text;
  for (const [k, v] of map ?? []) if (v === text) return k;
  return undefined;
}

const MARK_ALL = 0xffffffff;

/** `MARK set 0x1`, `MARK or 0x4000`, … back to the `--set-xmark value/mask` iptables-save prints. */
function xmark(op: string, v: string): string {
  const n = Number(v) >>> 0;
  switch (op) {
    case 'set': return `${v}/0xffffffff`;
    case 'or': return `${v}/${v}`;
    case 'and': return `0x0/0x${((~n & MARK_ALL) >>> 0).toString(16)}`;
    case 'xor': return `${v}/0x0`;
    default: return v;
  }
}

const LOG_LEVELS = ['emerg', 'alert', 'crit', 'err', 'warn', 'notice', 'info', 'debug'];
const LOG_FLAGS: [number, string][] = [[1, '--log-tcp-sequence'], [2, '--log-tcp-options'], [4, '--log-ip-options'], [8, '--log-uid'], [0x20, '--log-macdecode']];

/** An address the listing shows by name, back to its number. */
export function unlistHost(text: string, family: Family, names?: NameTables): string | undefined {
  const slash = text.indexOf('/');
  const host = slash < 0 ? text : text.slice(0, slash);
  const mask = slash < 0 ? '' : text.slice(slash);
  if (parseIP(host, family)) return text;
  for (const [k, v] of names?.hosts ?? []) if (v === host && parseIP(k, family)) return k + mask;
  return undefined;
}

/**
 * The reverse parsers, keyed by extension name. Each regex is anchored at the current place in
 * the option text; the first that matches takes its text.
 */
export const UNLISTERS: { ext: string; re: RegExp; parse: Parser; target?: readonly string[] }[] = [
  { ext: 'tcp', re: /^tcp((?: (?:spt|dpt)s?:!?(?:(?!flags:)[^\s:])+(?::(?:(?!flags:)[^\s:])+)?)*)(?: option=(!?)(\d+))?(?: ?flags: ?(!?)(\S+)\/(\S+))?(?=\s|$)/, parse: (m, c) => {
    const r = portItems(m[1], 'tcp', c.names);
    const args = ['-m', 'tcp', ...r.args];
    if (m[3]) args.push(...bang(m[2]), '--tcp-option', m[3]);
    if (m[5]) args.push(...bang(m[4]), '--tcp-flags', flagNames(m[5]), flagNames(m[6]));
    return { args, problem: r.problem };
  } },
  { ext: 'udp', re: /^udp((?: (?:spt|dpt)s?:!?[^\s:]+(?::[^\s:]+)?)*)(?=\s|$)/, parse: (m, c) => {
    const r = portItems(m[1], 'udp', c.names);
    return { args: ['-m', 'udp', ...r.args], problem: r.problem };
  } },
  { ext: 'sctp', re: /^sctp((?: (?:spt|dpt)s?:!?[^\s:]+(?::[^\s:]+)?)*)(?=\s|$)/, parse: (m, c) => {
    const r = portItems(m[1], 'sctp', c.names);
    return { args: ['-m', 'sctp', ...r.args], problem: r.problem };
  } },
  { ext: 'multiport', re: /^multiport (sports|dports|ports) ( ?!)?(\S+)/, parse: (m, c) => {
    const proto = c.protocol === '17' || c.protocol === 'udp' ? 'udp' : 'tcp';
    let problem: string | undefined;
    const port = (name: string) => {
      const n = unlistPort(name, proto, c.names);
      if (n === undefined) problem = `port name \`${name}' is not known`;
      return n ?? name;
    };
    const ports = m[3].split(',').map((p) => p.split(':').map(port).join(':'));
    return { args: ['-m', 'multiport', ...bang(m[2]), `--${m[1]}`, ports.join(',')], problem };
  } },
  { ext: 'comment', re: /^\/\* (.*?) \*\/(?=\s|$)/, parse: (m) => ({ args: ['-m', 'comment', '--comment', m[1]] }) },
  { ext: 'owner', re: /^((?:(?:! )?owner (?:UID match \S+|GID match \S+|socket exists) ?|(?:! )?incl\. suppl\. groups ?)+)/, parse: (m, c) => {
    const args = ['-m', 'owner'];
    let problem: string | undefined;
    const re = /(! )?(?:owner (UID|GID) match (\S+)|owner (socket exists)|(incl\. suppl\. groups))/g;
    for (let x = re.exec(m[1]); x; x = re.exec(m[1])) {
      if (x[1]) args.push('!');
      if (x[4]) args.push('--socket-exists');
      else if (x[5]) args.push('--suppl-groups');
      else {
        const id = unlistId(x[3], x[2] === 'UID' ? c.names?.users : c.names?.groups);
        if (id === undefined) problem = `${x[2] === 'UID' ? 'user' : 'group'} name \`${x[3]}' is not known`;
        args.push(x[2] === 'UID' ? '--uid-owner' : '--gid-owner', id ?? x[3]);
      }
    }
    return { args, problem };
  } },
  { ext: 'state', re: /^(! )?state (\S+)/, parse: (m) => ({ args: ['-m', 'state', ...bang(m[1]), '--state', m[2]] }) },
  { ext: 'conntrack', re: /^((?:(?:! )?ct(?:state|proto|origsrc|origdst|replsrc|repldst|origsrcport|origdstport|replsrcport|repldstport|status|expire|dir) \S+ ?)+)/, parse: (m) => {
    const args = ['-m', 'conntrack'];
    const re = /(! )?ct(\w+) (\S+)/g;
    for (let x = re.exec(m[1]); x; x = re.exec(m[1])) args.push(...bang(x[1]), `--ct${x[2]}`, x[3]);
    return { args };
  } },
  { ext: 'mark', re: /^mark match (! )?(\S+)/, parse: (m) => ({ args: ['-m', 'mark', ...bang(m[1]), '--mark', m[2]] }) },
  { ext: 'connmark', re: /^connmark match (!)? *(\S+)/, parse: (m) => ({ args: ['-m', 'connmark', ...bang(m[1]), '--mark', m[2]] }) },
  { ext: 'statistic', re: /^statistic mode random (! )?probability (\S+)/, parse: (m) => ({ args: ['-m', 'statistic', '--mode', 'random', ...bang(m[1]), '--probability', m[2]] }) },
  { ext: 'statistic', re: /^statistic mode nth (! )?every (\d+)(?: packet (\d+))?/, parse: (m) => ({
    args: ['-m', 'statistic', '--mode', 'nth', ...bang(m[1]), '--every', m[2], ...(m[3] ? ['--packet', m[3]] : [])] }) },
  { ext: 'addrtype', re: /^ADDRTYPE match((?: (?:src|dst)-type !?\S+)+)( limit-in| limit-out)?/, parse: (m) => {
    const args = ['-m', 'addrtype'];
    for (const x of m[1].matchAll(/(src|dst)-type (!?)(\S+)/g)) args.push(...bang(x[2]), `--${x[1]}-type`, x[3]);
    if (m[2]) args.push(m[2] === ' limit-in' ? '--limit-iface-in' : '--limit-iface-out');
    return { args };
  } },
  { ext: 'recent', re: /^(! )?recent: (SET|CHECK|UPDATE|REMOVE)(?: seconds: (\d+))?( reap)?(?: hit_count: (\d+))?( TTL-Match)? name: (\S+) side: (source|dest)(?: mask: (\S+))?/, parse: (m) => {
    const op = { SET: '--set', CHECK: '--rcheck', UPDATE: '--update', REMOVE: '--remove' }[m[2]]!;
    const args = ['-m', 'recent', ...bang(m[1]), op];
    if (m[3]) args.push('--seconds', m[3]);
    if (m[4]) args.push('--reap');
    if (m[5]) args.push('--hitcount', m[5]);
    if (m[6]) args.push('--rttl');
    args.push('--name', m[7], m[8] === 'source' ? '--rsource' : '--rdest');
    if (m[9]) args.push('--mask', m[9]);
    return { args };
  } },
  { ext: 'limit', re: /^limit: (?:up to|avg) (\S+) burst (\d+)/, parse: (m) => ({ args: ['-m', 'limit', '--limit', m[1], '--limit-burst', m[2]] }) },
  { ext: 'icmp', re: /^icmp ?(!?)type (\d+)(?: code (\d+)| codes (\d+)-(\d+))?/, parse: (m) => ({
    args: ['-m', 'icmp', ...bang(m[1]), '--icmp-type', m[3] !== undefined ? `${m[2]}/${m[3]}` : m[2]] }) },
  { ext: 'icmp', re: /^icmp (!?)([a-z][a-z-]*)(?=\s|$)/, parse: (m) => ({ args: ['-m', 'icmp', ...bang(m[1]), '--icmp-type', m[2]] }) },
  { ext: 'icmp6', re: /^ipv6-icmp ?(!?)type (\d+)(?: code (\d+))?/, parse: (m) => ({
    args: ['-m', 'icmp6', ...bang(m[1]), '--icmpv6-type', m[3] !== undefined ? `${m[2]}/${m[3]}` : m[2]] }) },
  { ext: 'icmp6', re: /^ipv6-icmp (!?)([a-z][a-z-]*)(?=\s|$)/, parse: (m) => ({ args: ['-m', 'icmp6', ...bang(m[1]), '--icmpv6-type', m[2]] }) },
  { ext: 'iprange', re: /^(source|destination) IP range (!?)(\S+)/, parse: (m) => ({
    args: ['-m', 'iprange', ...bang(m[2]), m[1] === 'source' ? '--src-range' : '--dst-range', m[3]] }) },
  { ext: 'set', re: /^(! )?match-set (\S+) (\S+)/, parse: (m) => ({ args: ['-m', 'set', ...bang(m[1]), '--match-set', m[2], m[3]] }) },
  { ext: 'physdev', re: /^PHYSDEV match((?: !? ?--physdev-[a-z-]+(?: [^-\s!]\S*)?)+)/, parse: (m) => ({
    args: ['-m', 'physdev', ...m[1].trim().split(/\s+/)] }) },
  { ext: 'pkttype', re: /^PKTTYPE (!?)= (\S+)/, parse: (m) => ({ args: ['-m', 'pkttype', ...bang(m[1]), '--pkt-type', m[2]] }) },
  { ext: 'length', re: /^length (!?)(\d+(?::\d+)?)/, parse: (m) => ({ args: ['-m', 'length', ...bang(m[1]), '--length', m[2]] }) },
  { ext: 'mac', re: /^MAC (!?)([0-9A-Fa-f:]{17})/, parse: (m) => ({ args: ['-m', 'mac', ...bang(m[1]), '--mac-source', m[2]] }) },
  { ext: 'ttl', re: /^TTL match TTL (==|!=|<|>) (\d+)/, parse: (m) => ({
    args: ['-m', 'ttl', ...(m[1] === '!=' ? ['!'] : []), m[1] === '<' ? '--ttl-lt' : m[1] === '>' ? '--ttl-gt' : '--ttl-eq', m[2]] }) },
  { ext: 'hl', re: /^HL match HL (==|!=|<|>) (\d+)/, parse: (m) => ({
    args: ['-m', 'hl', ...(m[1] === '!=' ? ['!'] : []), m[1] === '<' ? '--hl-lt' : m[1] === '>' ? '--hl-gt' : '--hl-eq', m[2]] }) },
  { ext: 'helper', re: /^(! )?helper match "([^"]*)"/, parse: (m) => ({ args: ['-m', 'helper', ...bang(m[1]), '--helper', m[2]] }) },
  // targets: their text follows the matches
  { ext: 'MARK', target: ['MARK'], re: /^MARK (set|or|and|xor|xset) (\S+)/, parse: (m) => ({ args: ['--set-xmark', xmark(m[1], m[2])] }) },
  { ext: 'CONNMARK', target: ['CONNMARK'], re: /^CONNMARK (save|restore)(?: mask (\S+))?/, parse: (m) => ({
    args: [m[1] === 'save' ? '--save-mark' : '--restore-mark', '--nfmask', m[2] ?? '0xffffffff', '--ctmask', m[2] ?? '0xffffffff'] }) },
  { ext: 'CONNMARK', target: ['CONNMARK'], re: /^CONNMARK (set|or|and|xor|xset) (\S+)/, parse: (m) => ({ args: ['--set-xmark', xmark(m[1], m[2])] }) },
  { ext: 'LOG', target: ['LOG'], re: /^LOG (?:flags (\d+) )?level (\S+)((?: (?:tcp-sequence|tcp-options|ip-options|uid|macdecode))*)(?: prefix "((?:[^"\\]|\\.)*)")?/, parse: (m) => {
    const level = LOG_LEVELS.includes(m[2]) ? String(LOG_LEVELS.indexOf(m[2])) : m[2];
    const args: string[] = [];
    if (m[4] !== undefined) args.push('--log-prefix', m[4]);
    if (level !== '4') args.push('--log-level', level);
    // -n prints the flags as a number, the named form as words (`tcp-options ip-options uid`)
    const flags = Number(m[1] ?? 0);
    for (const [bit, opt] of LOG_FLAGS) if (flags & bit || m[3].includes(` ${opt.slice(6)}`)) args.push(opt);
    return { args };
  } },
  { ext: 'REJECT', target: ['REJECT'], re: /^reject-with (\S+)/, parse: (m) => ({ args: ['--reject-with', m[1]] }) },
  { ext: 'DNAT', target: ['DNAT', 'SNAT'], re: /^to:(\S+)((?: random-fully| random| persistent)*)(?=\s|$)/, parse: (m, c) => ({
    args: [c.target === 'SNAT' ? '--to-source' : '--to-destination', m[1], ...m[2].trim().split(/\s+/).filter(Boolean).map((f) => `--${f}`)] }) },
  { ext: 'MASQUERADE', target: ['MASQUERADE'], re: /^(?:masq ports: (\S+))?((?: ?random-fully| ?random)*)(?=\s|$)/, parse: (m) => ({
    args: [...(m[1] ? ['--to-ports', m[1]] : []), ...m[2].trim().split(/\s+/).filter(Boolean).map((f) => `--${f}`)] }) },
  { ext: 'REDIRECT', target: ['REDIRECT'], re: /^(?:redir ports (\S+))?( ?random)?(?=\s|$)/, parse: (m) => ({
    args: [...(m[1] ? ['--to-ports', m[1]] : []), ...(m[2] ? ['--random'] : [])] }) },
  { ext: 'TPROXY', target: ['TPROXY'], re: /^TPROXY redirect (\S+):(\d+) mark (\S+)/, parse: (m) => ({
    args: ['--on-port', m[2], '--on-ip', m[1], '--tproxy-mark', m[3]] }) },
  { ext: 'NFQUEUE', target: ['NFQUEUE'], re: /^NFQUEUE num (\d+)( bypass)?/, parse: (m) => ({ args: ['--queue-num', m[1], ...(m[2] ? ['--queue-bypass'] : [])] }) },
  { ext: 'NFQUEUE', target: ['NFQUEUE'], re: /^NFQUEUE balance (\d+):(\d+)( bypass)?/, parse: (m) => ({
    args: ['--queue-balance', `${m[1]}:${m[2]}`, ...(m[3] ? ['--queue-bypass'] : [])] }) },
  { ext: 'CT', target: ['CT'], re: /^CT notrack/, parse: () => ({ args: ['--notrack'] }) },
  { ext: 'NOTRACK', target: ['CT'], re: /^NOTRACK(?=\s|$)/, parse: () => ({ args: [], target: 'NOTRACK' }) },
  { ext: 'CT', target: ['CT'], re: /^CT zone (\d+)/, parse: (m) => ({ args: ['--zone', m[1]] }) },
];

/** One piece of option text read back: the extension, its words (with `-m NAME` for matches). */
export interface OptionPiece {
  ext: string;
  target: boolean;
  args: string[];
  text: string;
  problem?: string;
  /** The target's real name, when the text says it is not the one listed. */
  rename?: string;
}

/**
 * Read the option column: a list of recognised pieces, and the text nothing recognised (kept
 * verbatim by the caller). `[goto] ` is taken first, where the kernel prints it.
 */
export function unlistOptions(text: string, ctx: UnlistContext): { goto: boolean; pieces: OptionPiece[]; rest?: string } {
  let s = text.trim();
  let goto = false;
  if (s.startsWith('[goto]')) {
    goto = true;
    s = s.slice(6).trim();
  }
  const pieces: OptionPiece[] = [];
  while (s.length) {
    let hit = false;
    for (const u of UNLISTERS) {
      if (u.target && !u.target.includes(ctx.target ?? '')) continue;
      const m = u.re.exec(s);
      if (!m || m[0].length === 0) continue;
      const r = u.parse(m, ctx);
      pieces.push({ ext: u.ext, target: !!u.target, args: r.args, text: m[0].trim(), problem: r.problem, rename: r.target });
      s = s.slice(m[0].length).trim();
      hit = true;
      break;
    }
    if (!hit) return { goto, pieces, rest: s };
  }
  return { goto, pieces };
}
