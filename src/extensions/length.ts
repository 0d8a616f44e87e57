/** `-m length`: the IP packet's length, header included (libxt_length + xt_length). */
import type { GivenOption, MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce, strtoul } from './util';

export interface LengthInfo {
  min: number;
  max: number;
  invert: boolean;
}

/**
 * `N`, `N:M`, `:M` or `N:` as libxtables' XTTYPE_UINT16RC reads it (strtoul base 0; a missing end
 * takes its default: an empty text is 0, `:` every length). A reversed range is kept: iptables and
 * the kernel accept `5:3`, which matches nothing.
 */
function parseRange(o: GivenOption): [number, number] {
  const parts = o.args[0].split(':');
  const num = (t: string, dflt: number): number => {
    if (t === '') return dflt;
    const v = strtoul(t);
    if (!(v >= 0 && v <= 65535))
      throw new ExtensionError(`length: bad value for option "--length" near "${t}", or out of range (0-65535).`, o.token);
    return v;
  };
  if (parts.length > 2)
    throw new ExtensionError(`length: bad value for option "--length" near "${o.args[0]}", or out of range (0-65535).`, o.token);
  if (parts.length === 1) {
    const v = num(parts[0], 0);
    return [v, v];
  }
  return [num(parts[0], 0), num(parts[1], 65535)];
}

export const length: MatchExtension<LengthInfo> = {
  kind: 'match',
  name: 'length',
  options: [{ name: 'length', args: 1, invert: true }],
  parse(opts) {
    let info: LengthInfo | undefined;
    eachOnce(opts, 'length', (o) => {
      const [min, max] = parseRange(o);
      info = { min, max, invert: o.invert };
    });
    if (!info) throw new ExtensionError('length: option "--length" must be specified');
    return info;
  },
  save: (i) => `${i.invert ? ' !' : ''} --length ${i.min === i.max ? i.min : `${i.min}:${i.max}`}`,
  list: (i) => ` length ${i.invert ? '!' : ''}${i.min === i.max ? i.min : `${i.min}:${i.max}`}`,
  /** xt_length: the IPv4 total length, or the IPv6 payload length plus the 40-byte header. */
  match: (i, p) => (p.length >= i.min && p.length <= i.max) !== i.invert,
};
