/**
 * The extension registry: every match and target podtables models. Adding an extension means
 * adding its file and one line here; a test checks that every file is listed.
 */
import type { Extension, MatchExtension, TargetExtension } from './types';
import { comment } from './comment';
import { multiport } from './multiport';
import { REDIRECT } from './nat';
import { owner } from './owner';
import { tcp } from './tcp';
import { udp } from './udp';
// imports (group A: icmp … iprange)
import { icmp } from './icmp';
import { icmp6 } from './icmp6';
import { conntrack, state } from './conntrack';
import { statistic } from './statistic';
import { addrtype } from './addrtype';
import { iprange } from './iprange';
import { mac } from './mac';
// imports (group B: limit … policy)
import { hl } from './hl';
import { length } from './length';
import { limit } from './limit';
import { physdev } from './physdev';
import { pkttype } from './pkttype';
import { policy } from './policy';
import { recent } from './recent';
import { sctp } from './sctp';
import { set } from './set';
import { ttl } from './ttl';
// imports (group C: targets)
import { CONNMARK, connmark } from './connmark';
import { CT, NOTRACK } from './ct';
import { LOG } from './log';
import { MARK, mark } from './mark';
import { DNAT, MASQUERADE, SNAT } from './nat';
import { NFLOG } from './nflog';
import { NFQUEUE } from './nfqueue';
import { REJECT } from './reject';
import { TCPMSS } from './tcpmss';
import { TPROXY } from './tproxy';
import { TRACE } from './trace';

/** Match extensions (`-m NAME`). */
const MATCHES: MatchExtension[] = [
  tcp,
  udp,
  multiport,
  comment,
  owner,
  // matches (group A)
  icmp,
  icmp6,
  conntrack,
  state,
  statistic,
  addrtype,
  iprange,
  mac,
  // matches (group B)
  limit,
  recent,
  set,
  pkttype,
  physdev,
  length,
  ttl,
  hl,
  sctp,
  policy,
  // matches (group C: mark, connmark)
  mark,
  connmark,
];

/** Target extensions (`-j NAME`). */
const TARGETS: TargetExtension[] = [
  REDIRECT,
  // targets (group C)
  REJECT,
  LOG,
  NFLOG,
  MARK,
  CONNMARK,
  DNAT,
  SNAT,
  MASQUERADE,
  TPROXY,
  NOTRACK,
  CT,
  TRACE,
  NFQUEUE,
  TCPMSS,
];

function index<E extends Extension>(list: E[]): Map<string, E> {
  const m = new Map<string, E>();
  for (const e of list) {
    if (m.has(e.name)) throw new Error(`extension registered twice: ${e.name}`);
    const names = new Set<string>();
    for (const o of e.options)
      for (const n of [o.name, ...(o.aliases ?? [])]) {
        if (names.has(n) || !/^[a-z0-9][a-z0-9-]*$/.test(n)) throw new Error(`${e.name}: bad or duplicate option --${n}`);
        names.add(n);
      }
    m.set(e.name, e);
  }
  return m;
}

const matchIndex = index(MATCHES);
const targetIndex = index(TARGETS);

/** The match extension called `name`, if podtables models it. */
export const getMatch = (name: string): MatchExtension | undefined => matchIndex.get(name);
/** The target extension called `name`, if podtables models it. */
export const getTarget = (name: string): TargetExtension | undefined => targetIndex.get(name);
/** Every registered extension. */
export const allExtensions = (): Extension[] => [...MATCHES, ...TARGETS];
