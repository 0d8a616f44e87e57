/**
 * `-j CT` (libxt_CT revision 2 + xt_CT) and its alias `-j NOTRACK`: set up the conntrack entry
 * of a flow before it is created, so both live in the raw table only (mangle refuses them).
 */
import type { TargetExtension } from './types';
import { ExtensionError } from './types';
import { onlyOnce, parseUint } from './util';

/** Conntrack event names in bit order (IPCT_NEW …); `--ctevents` prints them in this order. */
const CT_EVENTS = ['new', 'related', 'destroy', 'reply', 'assured', 'protoinfo', 'helper', 'mark', 'natseqinfo', 'secmark'];
/** Expectation events: only `new` exists. */
const EXP_EVENTS = ['new'];

/** Conntrack helpers of Linux and the protocols they attach to; the kernel refuses others. */
const HELPERS: Record<string, string[]> = {
  amanda: ['udp'], ftp: ['tcp'], irc: ['tcp'], 'netbios-ns': ['udp'], pptp: ['tcp'], sane: ['tcp'],
  sip: ['udp', 'tcp'], snmp: ['udp'], tftp: ['udp'], RAS: ['udp'], 'Q.931': ['tcp'],
};

export interface CtInfo {
  notrack: boolean;
  helper?: string;
  timeout?: string;
  ctevents: number;
  expevents: number;
  zone: number;
  /** `--zone mark`: the zone comes from the packet mark; once set, a later number keeps it. */
  zoneMark: boolean;
  /** Directions the zone applies to; none or both print as `--zone`. */
  zoneOrig: boolean;
  zoneReply: boolean;
}

function parseEvents(text: string, names: string[]): number {
  let v = 0;
  for (const w of text.split(',')) {
    const i = names.indexOf(w);
    if (i < 0) throw new ExtensionError(`Unknown event type "${w}"`);
    v |= 1 << i;
  }
  return v;
}

const events = (v: number, names: string[]) => names.filter((_, i) => v & (1 << i)).join(',');

function zoneWords(i: CtInfo, lead: string): string {
  if (!i.zoneMark && !i.zone) return '';
  const dir = i.zoneOrig === i.zoneReply ? '' : i.zoneOrig ? '-orig' : '-reply';
  return `${lead}zone${dir} ${i.zoneMark ? 'mark' : i.zone}`;
}

/** save and -L share their words; -L drops the dashes and starts with `CT`. */
function words(i: CtInfo, lead: string): string {
  let s = '';
  if (i.notrack) s += `${lead}notrack`;
  if (i.helper) s += `${lead}helper ${i.helper}`;
  if (i.timeout) s += `${lead}timeout ${i.timeout}`;
  if (i.ctevents) s += `${lead}ctevents ${events(i.ctevents, CT_EVENTS)}`;
  if (i.expevents) s += `${lead}expevents ${events(i.expevents, EXP_EVENTS)}`;
  return s + zoneWords(i, lead);
}

export const CT: TargetExtension<CtInfo> = {
  kind: 'target',
  name: 'CT',
  tables: ['raw'],
  options: [
    { name: 'notrack', args: 0 },
    { name: 'helper', args: 1 },
    { name: 'timeout', args: 1 },
    { name: 'ctevents', args: 1 },
    { name: 'expevents', args: 1 },
    { name: 'zone-orig', args: 1 },
    { name: 'zone-reply', args: 1 },
    { name: 'zone', args: 1 },
  ],
  parse(opts, ctx) {
    onlyOnce(opts, 'CT');
    const i: CtInfo = { notrack: false, ctevents: 0, expevents: 0, zone: 0, zoneMark: false, zoneOrig: false, zoneReply: false };
    for (const o of opts) {
      const a = o.args[0];
      try {
        if (o.name === 'notrack') i.notrack = true;
        else if (o.name === 'helper') i.helper = a;
        else if (o.name === 'timeout') i.timeout = a;
        else if (o.name === 'ctevents') i.ctevents = parseEvents(a, CT_EVENTS);
        else if (o.name === 'expevents') i.expevents = parseEvents(a, EXP_EVENTS);
        else {
          // `--zone` clears the direction; `--zone-orig 5 --zone-reply 7` ends as `--zone 7`
          if (o.name === 'zone') i.zoneOrig = i.zoneReply = false;
          else if (o.name === 'zone-orig') i.zoneOrig = true;
          else i.zoneReply = true;
          if (a === 'mark') i.zoneMark = true;
          else
            try {
              i.zone = parseUint(a, 0, 65535, 'zone');
            } catch {
              throw new ExtensionError(`Cannot parse ${a} as a zone ID`);
            }
        }
      } catch (e) {
        if (e instanceof ExtensionError) e.token ??= o.token;
        throw e;
      }
    }
    // xt_ct_set_helper: the helper must exist for the rule's protocol; a notrack rule never uses it
    if (i.helper && !i.notrack) {
      const protos = HELPERS[i.helper];
      if (!protos) throw new ExtensionError(`CT: no conntrack helper called "${i.helper}"`);
      if (!ctx.protocol || ctx.protocol.invert || !protos.includes(ctx.protocol.value))
        throw new ExtensionError(`CT: helper "${i.helper}" needs -p ${protos.join(' or -p ')}`);
    }
    // `--timeout` names an nfct timeout policy, host state outside the ruleset: the kernel refuses
    // the rule when the policy does not exist, which a ruleset alone cannot tell, so it is kept
    return i;
  },
  save: (i) => words(i, ' --'),
  list: (i) => ' CT' + words(i, ' '),
  target(i, p, ctx) {
    if (i.notrack) {
      p.ct.state = 'UNTRACKED';
      return { verdict: 'continue' };
    }
    if (i.zoneMark || i.zone) p.ct.zone = i.zoneMark ? p.mark & 0xffff : i.zone;
    if (i.helper) ctx.note(`CT: helper ${i.helper} assigned (expectations are not modelled)`);
    if (i.timeout) ctx.note(`CT: timeout policy ${i.timeout} assigned (timeouts are not modelled)`);
    return { verdict: 'continue' };
  },
};

export const NOTRACK: TargetExtension<Record<string, never>> = {
  kind: 'target',
  name: 'NOTRACK',
  listName: 'CT',
  tables: ['raw'],
  options: [],
  parse: () => ({}),
  save: () => '',
  // iptables -L (both backends) names the target CT and prints NOTRACK as its option text
  list: () => ' NOTRACK',
  target(_i, p) {
    p.ct.state = 'UNTRACKED';
    return { verdict: 'continue' };
  },
};
