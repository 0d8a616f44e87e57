import type { VectorSet } from './types';

export const vectors: VectorSet[] = [
  {
    extension: 'tcp',
    rows: [
      { rule: '-p tcp --dport 80 -j ACCEPT', save: '-p tcp -m tcp --dport 80 -j ACCEPT', list: ' tcp dpt:80', listNames: ' tcp dpt:http', ok: true },
      { rule: '-p tcp -m tcp ! --sport 1024:65535', save: '=', list: ' tcp spts:!1024:65535', ok: true },
      { rule: '-p tcp -m tcp --dport 22: -j ACCEPT', save: '-p tcp -m tcp --dport 22:65535 -j ACCEPT', list: ' tcp dpts:22:65535', ok: true },
      { rule: '-p tcp --syn -j DROP', save: '-p tcp -m tcp --tcp-flags FIN,SYN,RST,ACK SYN -j DROP', list: ' tcp flags:0x17/0x02', listNames: ' tcp flags:FIN,SYN,RST,ACK/SYN', ok: true },
      { rule: '-p tcp ! --syn -j DROP', save: '-p tcp -m tcp ! --tcp-flags FIN,SYN,RST,ACK SYN -j DROP', list: ' tcp flags:!0x17/0x02', ok: true },
      { rule: '-p tcp -m tcp --tcp-flags ALL NONE -j DROP', save: '-p tcp -m tcp --tcp-flags FIN,SYN,RST,PSH,ACK,URG NONE -j DROP', list: ' tcp flags:0x3F/0x00', ok: true },
      { rule: '-p tcp -m tcp --tcp-option 8 --sport 5', save: '-p tcp -m tcp --sport 5 --tcp-option 8', list: ' tcp spt:5 option=8', ok: true },
      { rule: '-p tcp --dport 70000', ok: false },
      { rule: '-p tcp --dport 30:20', ok: false },
      { rule: '-p tcp -m multiport --dports 80,constructor', ok: false },
      { rule: '-p udp -m tcp --dport 80', ok: false },
    ],
  },
  {
    extension: 'udp',
    rows: [
      { rule: '-p udp --dport 53 -j ACCEPT', save: '-p udp -m udp --dport 53 -j ACCEPT', list: ' udp dpt:53', listNames: ' udp dpt:domain', ok: true },
      { rule: '-p udp -m udp --sport 67:68 ! --dport 1', save: '=', list: ' udp spts:67:68 dpt:!1', ok: true },
      { rule: '-p udp -m udp --dport 60000:29', save: '=', list: ' udp dpts:60000:29', ok: true },
      { rule: '-p udp --dport toString', ok: false },
    ],
  },
];
