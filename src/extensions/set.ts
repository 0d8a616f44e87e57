/**
 * `-m set`: membership of an ipset (libxt_set revision 4 + xt_set). The sets live in the kernel,
 * outside the ruleset: podtables checks the rule's shape, and a packet's membership stays undecided.
 */
import type { MatchExtension } from './types';
import { ExtensionError } from './types';

/** IPSET_MAXNAMELEN less the NUL. */
export const SET_NAME_MAX = 31;
/** IPSET_DIM_MAX: src/dst directions one lookup may take. */
export const SET_DIM_MAX = 6;

export type CounterOp = 'eq' | 'ne' | 'lt' | 'gt';

export interface SetInfo {
  name: string;
  /** One direction per dimension of the set's key, `src` or `dst`. */
  dirs: ('src' | 'dst')[];
  invert: boolean;
  returnNomatch: boolean;
  /** `! --update-counters` / `! --update-subcounters`: leave the set's counters alone. */
  skipCounters: boolean;
  skipSubcounters: boolean;
  /** Counter tests, values as decimal text (unsigned 64-bit). */
  packets?: { op: CounterOp; value: string };
  bytes?: { op: CounterOp; value: string };
}

/** strtoull as set_parse_counter checks it: all digits (base 0), within 64 bits. */
function parseCounter(text: string): string {
  let v: bigint | undefined;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = BigInt(text);
  else if (/^0[0-7]*$/.test(text)) v = BigInt('0o' + (text.slice(1) || '0'));
  else if (/^[1-9]\d*$/.test(text)) v = BigInt(text);
  if (v === undefined || v >= 1n << 64n) throw new ExtensionError(`Cannot parse ${text} as a counter value`);
  return v.toString();
}

function counterText(prefix: string, name: string, c?: { op: CounterOp; value: string }): string {
  if (!c) return '';
  return c.op === 'ne' ? ` ! ${prefix}${name}-eq ${c.value}` : ` ${prefix}${name}-${c.op} ${c.value}`;
}

/** set_print_v4_matchinfo: the same words for save (`--` prefix) and -L (none). */
function text(i: SetInfo, prefix: string): string {
  return `${i.invert ? ' !' : ''} ${prefix}match-set ${i.name} ${i.dirs.join(',')}` +
    (i.returnNomatch ? ` ${prefix}return-nomatch` : '') +
    (i.skipCounters ? ` ! ${prefix}update-counters` : '') +
    (i.skipSubcounters ? ` ! ${prefix}update-subcounters` : '') +
    counterText(prefix, 'packets', i.packets) + counterText(prefix, 'bytes', i.bytes);
}

const COUNTERS = ['packets-eq', 'packets-lt', 'packets-gt', 'bytes-eq', 'bytes-lt', 'bytes-gt'];

export const set: MatchExtension<SetInfo> = {
  kind: 'match',
  name: 'set',
  options: [
    // `--set` is the deprecated spelling iptables still takes (and saves as --match-set)
    { name: 'match-set', aliases: ['set'], args: 2, invert: true },
    { name: 'return-nomatch', args: 0, invert: true },
    { name: 'update-counters', args: 0, invert: true },
    { name: 'update-subcounters', args: 0, invert: true },
    ...COUNTERS.map((name) => ({ name, args: 1, invert: true })),
  ],
  parse(opts) {
    let info: SetInfo | undefined;
    let returnNomatch = false, skipCounters = false, skipSubcounters = false;
    let packets: SetInfo['packets'], bytes: SetInfo['bytes'];
    for (const o of opts) {
      const fail = (m: string) => new ExtensionError(m, o.token);
      if (o.name === 'match-set') {
        if (info) throw fail('--match-set can be specified only once');
        const [name, dirText] = o.args;
        if (name.length > SET_NAME_MAX) throw fail(`setname \`${name}' too long, max ${SET_NAME_MAX} characters.`);
        // iptables asks the kernel for the set by name and stops when it is not there; which sets
        // a host has is not ours to know, but no set is ever named by the empty string
        if (name === '') throw fail("Set  doesn't exist.");
        const dirs = dirText.split(',');
        if (dirs.length > SET_DIM_MAX) throw fail(`Can't be more src/dst options than ${SET_DIM_MAX}.`);
        if (!dirs.every((d) => d === 'src' || d === 'dst'))
          throw fail("You must spefify (the comma separated list of) 'src' or 'dst'.");
        info = { name, dirs: dirs as SetInfo['dirs'], invert: o.invert, returnNomatch: false, skipCounters: false, skipSubcounters: false };
      } else if (o.name === 'return-nomatch') {
        if (o.invert) throw fail('--return-nomatch flag cannot be inverted');
        returnNomatch = true;
      } else if (o.name === 'update-counters') skipCounters = o.invert;
      else if (o.name === 'update-subcounters') skipSubcounters = o.invert;
      else {
        const [what, op] = o.name.split('-') as ['packets' | 'bytes', 'eq' | 'lt' | 'gt'];
        if (o.invert && op !== 'eq') throw fail(`--${o.name} option cannot be inverted`);
        if ((what === 'packets' ? packets : bytes) !== undefined) throw fail(`only one of the --${what}-[eq|lt|gt] is allowed`);
        let value: string;
        try {
          value = parseCounter(o.args[0]);
        } catch (e) {
          throw fail((e as Error).message);
        }
        const c = { op: o.invert ? ('ne' as const) : op, value };
        if (what === 'packets') packets = c;
        else bytes = c;
      }
    }
    if (!info) throw new ExtensionError("You must specify `--match-set' with proper arguments");
    return { ...info, returnNomatch, skipCounters, skipSubcounters, ...(packets && { packets }), ...(bytes && { bytes }) };
  },
  save: (i) => text(i, '--'),
  list: (i) => text(i, ''),
  /** Set members are kernel data the model does not hold. */
  match: (i) => ({ undecided: `membership of ipset ${i.name} (${i.dirs.join(',')}) is not modelled` }),
};
