/** `-m udp`: source and destination ports of UDP datagrams (libxt_udp + xt_tcpudp). */
import type { MatchExtension } from './types';
import { inPorts, listPorts, parsePortOpt, savePorts, type PortRange } from './tcp';
import { at, once } from './util';

export interface UdpInfo {
  sport?: PortRange;
  dport?: PortRange;
}

export const udp: MatchExtension<UdpInfo> = {
  kind: 'match',
  name: 'udp',
  protocol: 'udp',
  options: [
    { name: 'sport', aliases: ['source-port'], args: 1, invert: true },
    { name: 'dport', aliases: ['destination-port'], args: 1, invert: true },
  ],
  parse(opts) {
    once(opts, 'udp');
    const info: UdpInfo = {};
    for (const o of opts)
      at(o, () => {
        // libxt_udp, unlike tcp, keeps a reversed range (it then matches nothing)
        if (o.name === 'sport') info.sport = parsePortOpt(o.args, o.invert, true);
        else info.dport = parsePortOpt(o.args, o.invert, true);
      });
    return info;
  },
  save: (i) => savePorts('sport', i.sport) + savePorts('dport', i.dport),
  list: (i, ctx) => ' udp' + listPorts('spt', i.sport, 'udp', ctx) + listPorts('dpt', i.dport, 'udp', ctx),
  match(i, p) {
    if (p.protocol !== 17 || p.fragment) return false;
    return inPorts(i.sport, p.sport) && inPorts(i.dport, p.dport);
  },
};
