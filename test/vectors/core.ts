import type { VectorSet } from './types';

/** The rule header: addresses, interfaces, protocol, fragments, standard targets. */
export const vectors: VectorSet[] = [
  {
    extension: 'core',
    rows: [
      { rule: '-s 10.0.0.1 -j ACCEPT', save: '-s 10.0.0.1/32 -j ACCEPT', list: '', ok: true },
      { rule: '! -s 10.0.0.0/8 -d 192.168.1.7/255.255.0.0 -j DROP', save: '! -s 10.0.0.0/8 -d 192.168.0.0/16 -j DROP', list: '', ok: true },
      { rule: '-d 10.1.2.3/255.0.255.0 -j RETURN', save: '-d 10.0.2.0/255.0.255.0 -j RETURN', list: '', ok: true },
      { rule: '-i eth+ ! -o lo -p udp -j ACCEPT', save: '-i eth+ ! -o lo -p udp -j ACCEPT', list: '', ok: true, chain: 'FORWARD' },
      { rule: '-p 6 -j ACCEPT', save: '-p tcp -j ACCEPT', list: '', ok: true },
      { rule: '! -p icmp -f', save: '! -p icmp -f', list: '', ok: true },
      { rule: '-p 47', save: '-p gre', list: '', ok: true },
      { rule: '-p all -s 0.0.0.0/0 -j ACCEPT', save: '-j ACCEPT', list: '', ok: true },
      { rule: '-s 1.2.3.4 -j RETURN', save: '-s 1.2.3.4/32 -j RETURN', list: '', ok: true },
      { rule: '-s 2001:db8::1/64 -j ACCEPT', save: '-s 2001:db8::/64 -j ACCEPT', list: '', ok: true, family: 'ipv6' },
      { rule: '-d ::ffff:1.2.3.4 -p ipv6-icmp -j DROP', save: '-d ::ffff:1.2.3.4/128 -p ipv6-icmp -j DROP', list: '', ok: true, family: 'ipv6' },
      { rule: '-p icmpv6 -j DROP', save: '-p ipv6-icmp -j DROP', list: '', ok: true, family: 'ipv6' },
      { rule: '-p bogus -j ACCEPT', ok: false },
      { rule: '-p __proto__ -j ACCEPT', ok: false },
      { rule: '-s 300.1.1.1 -j ACCEPT', ok: false },
      { rule: '-i averyveryverylongname0 -j ACCEPT', ok: false },
      { rule: '--dport 80 -j ACCEPT', ok: false },
      { rule: '-j ACCEPT ! ', ok: false },
    ],
  },
];
