/**
 * IP protocol names as iptables resolves and prints them: Debian netbase's /etc/protocols first
 * (getprotobynumber/getprotobyname), then iptables' own built-in list (xtables_chain_protos).
 * Embedded so the engine needs no file system.
 */

/** Name → number, /etc/protocols order (the first name of a number is the one printed). */
const NETBASE: [string, number][] = [
  ['ip', 0], ['hopopt', 0], ['icmp', 1], ['igmp', 2], ['ggp', 3], ['ipencap', 4], ['st', 5], ['tcp', 6],
  ['egp', 8], ['igp', 9], ['pup', 12], ['udp', 17], ['hmp', 20], ['xns-idp', 22], ['rdp', 27],
  ['iso-tp4', 29], ['dccp', 33], ['xtp', 36], ['ddp', 37], ['idpr-cmtp', 38], ['ipv6', 41],
  ['ipv6-route', 43], ['ipv6-frag', 44], ['idrp', 45], ['rsvp', 46], ['gre', 47], ['esp', 50], ['ah', 51],
  ['skip', 57], ['ipv6-icmp', 58], ['ipv6-nonxt', 59], ['ipv6-opts', 60], ['rspf', 73], ['vmtp', 81],
  ['eigrp', 88], ['ospf', 89], ['ax.25', 93], ['ipip', 94], ['etherip', 97], ['encap', 98], ['pim', 103],
  ['ipcomp', 108], ['vrrp', 112], ['l2tp', 115], ['isis', 124], ['sctp', 132], ['fc', 133],
  ['mobility-header', 135], ['udplite', 136], ['mpls-in-ip', 137], ['manet', 138], ['hip', 139],
  ['shim6', 140], ['wesp', 141], ['rohc', 142], ['ethernet', 143],
];
/** Upper-case aliases /etc/protocols lists (getprotobyname is case-sensitive). */
const ALIASES: Record<string, number> = {
  IP: 0, HOPOPT: 0, ICMP: 1, IGMP: 2, GGP: 3, 'IP-ENCAP': 4, ST: 5, TCP: 6, EGP: 8, IGP: 9, PUP: 12, UDP: 17,
  HMP: 20, 'XNS-IDP': 22, RDP: 27, 'ISO-TP4': 29, DCCP: 33, XTP: 36, DDP: 37, 'IDPR-CMTP': 38, IPv6: 41,
  'IPv6-Route': 43, 'IPv6-Frag': 44, IDRP: 45, RSVP: 46, GRE: 47, 'IPSEC-ESP': 50, 'IPSEC-AH': 51, SKIP: 57,
  'IPv6-ICMP': 58, 'IPv6-NoNxt': 59, 'IPv6-Opts': 60, RSPF: 73, VMTP: 81, EIGRP: 88, OSPFIGP: 89,
  'AX.25': 93, IPIP: 94, ETHERIP: 97, ENCAP: 98, PIM: 103, IPCOMP: 108, VRRP: 112, L2TP: 115, ISIS: 124,
  SCTP: 132, FC: 133, 'Mobility-Header': 135, UDPLite: 136, 'MPLS-in-IP': 137, MANET: 138, HIP: 139,
  Shim6: 140, WESP: 141, ROHC: 142, Ethernet: 143,
};
/** iptables' own names, used when /etc/protocols does not know the name. */
const BUILTIN: Record<string, number> = {
  tcp: 6, sctp: 132, udp: 17, udplite: 136, icmp: 1, icmpv6: 58, ipv6_icmp: 58, esp: 50, ah: 51,
  'ipv6-mh': 135, mh: 135, all: 0,
};

const byName = new Map<string, number>();
const byNumber = new Map<number, string>();
for (const [n, v] of NETBASE) {
  byName.set(n, v);
  if (!byNumber.has(v)) byNumber.set(v, n);
}
for (const [n, v] of Object.entries(ALIASES)) byName.set(n, v);

/** Protocol number of a `-p` argument (name, alias or number), or undefined if unknown. */
export function protocolNumber(text: string): number | undefined {
  if (/^\d+$/.test(text)) {
    const v = Number(text);
    return v <= 255 ? v : undefined;
  }
  const lower = text.toLowerCase();
  return byName.get(text) ?? (Object.hasOwn(BUILTIN, lower) ? BUILTIN[lower] : undefined) ?? byName.get(lower);
}

/** The name iptables-save prints for a protocol number (number as text when it has none). */
export function protocolName(n: number): string {
  return byNumber.get(n) ?? Object.entries(BUILTIN).find(([, v]) => v === n)?.[0] ?? String(n);
}

/** The name of the protocol match iptables loads implicitly for `-p` (tcp, udp, icmp, …). */
export function protocolMatchName(n: number, family: 'ipv4' | 'ipv6'): string | undefined {
  switch (n) {
    case 6: return 'tcp';
    case 17: return 'udp';
    case 132: return 'sctp';
    case 136: return 'udplite';
    case 33: return 'dccp';
    case 1: return family === 'ipv4' ? 'icmp' : undefined;
    case 58: return family === 'ipv6' ? 'icmp6' : undefined;
    case 135: return family === 'ipv6' ? 'mh' : undefined;
    case 50: return 'esp';
    case 51: return 'ah';
    default: return undefined;
  }
}
