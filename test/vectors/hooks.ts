import type { VectorSet } from './types';

/** Hook limits that depend on an extension's options (hooksFor), as the kernel's checkentry sets them. */
export const vectors: VectorSet[] = [
  {
    extension: 'hook-limits',
    rows: [
      { rule: '-m policy --dir in --pol none -j ACCEPT', ok: false, chain: 'OUTPUT' },
      { rule: '-m policy --dir out --pol none -j ACCEPT', save: '=', ok: true, chain: 'OUTPUT' },
      { rule: '-m policy --dir out --pol ipsec -j ACCEPT', ok: false, chain: 'INPUT' },
      { rule: '-m physdev --physdev-out veth0 -j ACCEPT', ok: false, chain: 'OUTPUT' },
      { rule: '-m physdev --physdev-is-bridged --physdev-out veth0 -j ACCEPT', save: '-m physdev --physdev-out veth0 --physdev-is-bridged -j ACCEPT', ok: true, chain: 'OUTPUT' },
      { rule: '-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu', ok: false, table: 'mangle', chain: 'INPUT' },
      { rule: '-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --clamp-mss-to-pmtu', save: '=', ok: true, table: 'mangle', chain: 'FORWARD' },
      { rule: '-p tcp -m tcp --tcp-flags SYN,RST SYN -j TCPMSS --set-mss 1400', save: '=', ok: true, table: 'mangle', chain: 'INPUT' },
      { rule: '-m addrtype --dst-type LOCAL --limit-iface-in -j ACCEPT', ok: false, chain: 'OUTPUT' },
      { rule: '-m addrtype --dst-type LOCAL --limit-iface-out -j ACCEPT', ok: false, chain: 'INPUT' },
      { rule: '-m addrtype --dst-type LOCAL --limit-iface-out -j ACCEPT', save: '=', ok: true, chain: 'OUTPUT' },
    ],
  },
];
