/** `-m physdev`: the bridge ports of a bridged packet (libxt_physdev + xt_physdev). */
import type { MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce } from './util';

export interface PhysdevInfo {
  in?: { name: string; invert: boolean };
  out?: { name: string; invert: boolean };
  isIn?: { invert: boolean };
  isOut?: { invert: boolean };
  isBridged?: { invert: boolean };
}

/** IFNAMSIZ less the NUL: xtables_parse_interface refuses longer names. */
const IFNAMSIZ = 16;

const flag = (label: string, f?: { invert: boolean }) => (f ? `${f.invert ? ' !' : ''} --${label}` : '');
const dev = (label: string, d?: { name: string; invert: boolean }) => (d ? `${d.invert ? ' !' : ''} --${label} ${d.name}` : '');

/** physdev_save's order: in, is-in, out, is-out, is-bridged. */
function saveText(i: PhysdevInfo): string {
  return dev('physdev-in', i.in) + flag('physdev-is-in', i.isIn) + dev('physdev-out', i.out) +
    flag('physdev-is-out', i.isOut) + flag('physdev-is-bridged', i.isBridged);
}

export const physdev: MatchExtension<PhysdevInfo> = {
  kind: 'match',
  name: 'physdev',
  // xt_physdev's checkentry: output-port options need --physdev-is-bridged when used from OUTPUT
  hooksFor: (i) =>
    (i.out || i.isOut) && (!i.isBridged || i.isBridged.invert) ? ['PREROUTING', 'INPUT', 'FORWARD', 'POSTROUTING'] : undefined,
  options: [
    { name: 'physdev-in', args: 1, invert: true },
    { name: 'physdev-out', args: 1, invert: true },
    { name: 'physdev-is-in', args: 0, invert: true },
    { name: 'physdev-is-out', args: 0, invert: true },
    { name: 'physdev-is-bridged', args: 0, invert: true },
  ],
  parse(opts) {
    if (opts.length === 0) throw new ExtensionError('PHYSDEV: no physdev option specified');
    const info: PhysdevInfo = {};
    eachOnce(opts, 'physdev', (o) => {
      if (o.name === 'physdev-in' || o.name === 'physdev-out') {
        const name = o.args[0];
        if (new TextEncoder().encode(name).length >= IFNAMSIZ)
          throw new ExtensionError(`interface name \`${name}' must be shorter than IFNAMSIZ (${IFNAMSIZ - 1})`);
        info[o.name === 'physdev-in' ? 'in' : 'out'] = { name, invert: o.invert };
      } else if (o.name === 'physdev-is-in') info.isIn = { invert: o.invert };
      else if (o.name === 'physdev-is-out') info.isOut = { invert: o.invert };
      else info.isBridged = { invert: o.invert };
    });
    return info;
  },
  save: saveText,
  list: (i) => ' PHYSDEV match' + saveText(i),
  /**
   * The model has no bridges, so every packet is one without bridge info: physdev_mt then
   * matches exactly when each option given is negated (a packet that crossed no bridge port is
   * "not in on eth0" and "not bridged").
   */
  match: (i) => [i.in, i.out, i.isIn, i.isOut, i.isBridged].every((o) => !o || o.invert),
};
