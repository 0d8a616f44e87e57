/** `-m mac --mac-source` (libxt_mac + the kernel's mac_mt): the Ethernet source of arriving packets. */
import type { MatchExtension } from './types';
import { ExtensionError } from './types';
import { eachOnce } from './util';

export interface MacInfo {
  /** Lower-case, two hex digits per byte, as iptables prints it. */
  mac: string;
  invert: boolean;
}

/** Six colon-separated parts of one or two hex digits each (`0:1:2:3:4:5` is fine, dashes are not). */
export function parseMac(text: string): string {
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{1,2}$/.test(p)))
    throw new ExtensionError('Invalid MAC address specified.');
  return parts.map((p) => p.toLowerCase().padStart(2, '0')).join(':');
}

export const mac: MatchExtension<MacInfo> = {
  kind: 'match',
  name: 'mac',
  hooks: ['PREROUTING', 'INPUT', 'FORWARD'],
  options: [{ name: 'mac-source', args: 1, invert: true }],
  parse(opts) {
    let info: MacInfo | undefined;
    eachOnce(opts, 'mac', (o) => {
      info = { mac: parseMac(o.args[0]), invert: o.invert };
    });
    if (!info) throw new ExtensionError('mac: option "--mac-source" must be specified');
    return info;
  },
  save: (i) => `${i.invert ? ' !' : ''} --mac-source ${i.mac}`,
  list: (i) => ` MAC ${i.invert ? '! ' : ''}${i.mac}`,
  match(i, p) {
    // mac_mt: a packet that did not come in over Ethernet (loopback, locally made) never matches,
    // negated or not
    if (!p.macSource) return false;
    return (p.macSource.toLowerCase() === i.mac) !== i.invert;
  },
};
