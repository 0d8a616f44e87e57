/** `-m tcp`: ports, flags and options of TCP segments (libxt_tcp + xt_tcpudp). */
import type { MatchExtension, PrintContext } from './types';
import { ExtensionError } from './types';
import { bang, listPort, once, parsePortRange, parseUint, pin } from './util';

export interface PortRange {
  min: number;
  max: number;
  invert: boolean;
}

export interface TcpInfo {
  sport?: PortRange;
  dport?: PortRange;
  /** `--tcp-flags MASK COMP` (`--syn` is FIN,SYN,RST,ACK SYN). */
  flags?: { mask: number; comp: number; invert: boolean };
  option?: { number: number; invert: boolean };
}

/** Flag names in the order iptables prints them. */
const FLAG_NAMES: [string, number][] = [
  ['FIN', 0x01], ['SYN', 0x02], ['RST', 0x04], ['PSH', 0x08], ['ACK', 0x10], ['URG', 0x20],
];

function parseFlags(text: string): number {
  let v = 0;
  for (const n of text.split(',')) {
    const u = n.toUpperCase();
    if (u === 'ALL') v |= 0x3f;
    else if (u === 'NONE') continue;
    else {
      const f = FLAG_NAMES.find(([name]) => name === u);
      if (!f) throw new ExtensionError(`Unknown TCP flag \`${n}'`);
      v |= f[1];
    }
  }
  return v;
}

/** Flags as `print_tcpf` prints them: names joined by commas, or NONE. */
export function formatTcpFlags(v: number): string {
  const names = FLAG_NAMES.filter(([, b]) => v & b).map(([n]) => n);
  return names.length ? names.join(',') : 'NONE';
}

/** The field an option sets (--syn sets --tcp-flags'). */
const flagsKey = (name: string): string => (name === 'syn' ? 'tcp-flags' : name);

export function parsePortOpt(args: string[], invert: boolean, reversedOk = false): PortRange {
  const [min, max] = parsePortRange(args[0], 'port', reversedOk);
  return { min, max, invert };
}

/** Ports as the save functions print them: `P` or `L:U`. */
export function savePorts(opt: string, r: PortRange | undefined): string {
  if (!r || (r.min === 0 && r.max === 65535 && !r.invert)) return '';
  return `${bang(r.invert)} --${opt} ${r.min === r.max ? r.min : `${r.min}:${r.max}`}`;
}

/** Ports as -L prints them: `dpt:80`, `dpts:1:1024`, `dpt:!80`. */
export function listPorts(name: string, r: PortRange | undefined, proto: string, ctx: PrintContext): string {
  if (!r || (r.min === 0 && r.max === 65535 && !r.invert)) return '';
  const inv = r.invert ? '!' : '';
  if (r.min === r.max) return ` ${name}:${inv}${listPort(r.min, proto, ctx)}`;
  return ` ${name}s:${inv}${listPort(r.min, proto, ctx)}:${listPort(r.max, proto, ctx)}`;
}

export const inPorts = (r: PortRange | undefined, p: number): boolean =>
  !r || ((p >= r.min && p <= r.max) !== r.invert);

export const tcp: MatchExtension<TcpInfo> = {
  kind: 'match',
  name: 'tcp',
  protocol: 'tcp',
  options: [
    { name: 'sport', aliases: ['source-port'], args: 1, invert: true },
    { name: 'dport', aliases: ['destination-port'], args: 1, invert: true },
    { name: 'tcp-flags', args: 2, invert: true },
    { name: 'syn', args: 0, invert: true },
    { name: 'tcp-option', args: 1, invert: true },
  ],
  parse(opts) {
    const info: TcpInfo = {};
    // --syn and --tcp-flags set the same field; a rule has few options, so pairs are compared
    for (let k = 0; k < opts.length; k++) {
      const o = opts[k];
      const key = flagsKey(o.name);
      for (let j = 0; j < k; j++)
        if (flagsKey(opts[j].name) === key) throw new ExtensionError(`multiple --${o.name === 'syn' || o.name === 'tcp-flags' ? 'flags' : o.name} flags not allowed`, o.token);
      try {
        if (o.name === 'sport') info.sport = parsePortOpt(o.args, o.invert);
        else if (o.name === 'dport') info.dport = parsePortOpt(o.args, o.invert);
        else if (o.name === 'syn') info.flags = { mask: 0x17, comp: 0x02, invert: o.invert };
        else if (o.name === 'tcp-flags') info.flags = { mask: parseFlags(o.args[0]), comp: parseFlags(o.args[1]), invert: o.invert };
        else if (o.name === 'tcp-option') info.option = { number: parseUint(o.args[0], 1, 255, 'TCP option'), invert: o.invert };
      } catch (e) {
        throw pin(e, o);
      }
    }
    once(opts, 'tcp');
    return info;
  },
  save(i) {
    let s = savePorts('sport', i.sport) + savePorts('dport', i.dport);
    if (i.option) s += `${bang(i.option.invert)} --tcp-option ${i.option.number}`;
    if (i.flags && (i.flags.mask || i.flags.invert))
      s += `${bang(i.flags.invert)} --tcp-flags ${formatTcpFlags(i.flags.mask)} ${formatTcpFlags(i.flags.comp)}`;
    return s;
  },
  list(i, ctx) {
    let s = ' tcp' + listPorts('spt', i.sport, 'tcp', ctx) + listPorts('dpt', i.dport, 'tcp', ctx);
    if (i.option) s += ` option=${i.option.invert ? '!' : ''}${i.option.number}`;
    if (i.flags && (i.flags.mask || i.flags.invert)) {
      const f = ctx.numeric
        ? `0x${i.flags.mask.toString(16).toUpperCase().padStart(2, '0')}/0x${i.flags.comp.toString(16).toUpperCase().padStart(2, '0')}`
        : `${formatTcpFlags(i.flags.mask)}/${formatTcpFlags(i.flags.comp)}`;
      s += ` flags:${i.flags.invert ? '!' : ''}${f}`;
    }
    return s;
  },
  match(i, p) {
    if (p.protocol !== 6 || p.fragment) return false;
    if (!inPorts(i.sport, p.sport) || !inPorts(i.dport, p.dport)) return false;
    if (i.flags && ((p.tcpFlags & i.flags.mask) === i.flags.comp) === i.flags.invert) return false;
    if (i.option) return { undecided: `TCP option ${i.option.number} presence is not modelled` };
    return true;
  },
};
