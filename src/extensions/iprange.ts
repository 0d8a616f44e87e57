/** `-m iprange` (libxt_iprange revision 1 + the kernel's iprange_mt4/iprange_mt6): inclusive address ranges. */
import { formatIP, parseIP, type Family } from '../model/addr';
import type { MatchExtension } from './types';
import { ExtensionError, type GivenOption } from './types';
import { eachOnce, inetAton } from './util';

export interface AddrRange {
  family: Family;
  min: bigint;
  max: bigint;
  invert: boolean;
}

export interface IprangeInfo {
  src?: AddrRange;
  dst?: AddrRange;
}

/**
 * `A-B` or a lone `A` (saved as `A-A`). IPv4 parts go through inet_aton, so `010.0.0.1` is
 * 8.0.0.1; a reversed range is kept and then never matches. A bad part is named in the message.
 */
function parseRange(o: GivenOption, family: Family): AddrRange {
  const text = o.args[0];
  const dash = text.indexOf('-');
  const partsText = dash < 0 ? [text, text] : [text.slice(0, dash), text.slice(dash + 1)];
  const [min, max] = partsText.map((t) => {
    const v = family === 'ipv4' ? inetAton(t) : t.includes(':') ? parseIP(t, 'ipv6')?.value ?? null : null;
    if (v === null || t === '') throw new ExtensionError(`iprange: Bad value for "--${o.name}" option: "${t}"`);
    return v;
  });
  return { family, min, max, invert: o.invert };
}

const text = (r: AddrRange) => `${formatIP(r.min, r.family)}-${formatIP(r.max, r.family)}`;
const within = (r: AddrRange, a: bigint) => (a >= r.min && a <= r.max) !== r.invert;

export const iprange: MatchExtension<IprangeInfo> = {
  kind: 'match',
  name: 'iprange',
  options: [
    { name: 'src-range', args: 1, invert: true },
    { name: 'dst-range', args: 1, invert: true },
  ],
  parse(opts, ctx) {
    const info: IprangeInfo = {};
    eachOnce(opts, 'iprange', (o) => {
      if (o.name === 'src-range') info.src = parseRange(o, ctx.family);
      else info.dst = parseRange(o, ctx.family);
    });
    if (!info.src && !info.dst) throw new ExtensionError("iprange match: You must specify `--src-range' or `--dst-range'");
    return info;
  },
  save: (i) =>
    (i.src ? `${i.src.invert ? ' !' : ''} --src-range ${text(i.src)}` : '') +
    (i.dst ? `${i.dst.invert ? ' !' : ''} --dst-range ${text(i.dst)}` : ''),
  list: (i) =>
    (i.src ? ` source IP range ${i.src.invert ? '! ' : ''}${text(i.src)}` : '') +
    (i.dst ? ` destination IP range ${i.dst.invert ? '! ' : ''}${text(i.dst)}` : ''),
  match: (i, p) => (!i.src || within(i.src, p.src)) && (!i.dst || within(i.dst, p.dst)),
};
