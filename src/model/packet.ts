/**
 * A packet as the netfilter hooks see it, with the conntrack entry of its flow.
 */
import type { Family } from './addr';

/** Conntrack states as `-m conntrack --ctstate` names them. */
export type CtState = 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED' | 'SNAT' | 'DNAT';

/** TCP flag bits as in the TCP header (and `--tcp-flags`). */
export const TCP_FLAGS: Record<string, number> = {
  FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80,
};

/** One direction of a conntrack tuple. */
export interface Tuple {
  src: bigint;
  dst: bigint;
  sport: number;
  dport: number;
}

/** The conntrack entry a packet belongs to. */
export interface Conntrack {
  /** The state as `--ctstate` sees it for this packet. */
  state: 'NEW' | 'ESTABLISHED' | 'RELATED' | 'INVALID' | 'UNTRACKED';
  /** Whether this packet travels in the reply direction. */
  reply: boolean;
  mark: number;
  /** Status bits: EXPECTED, SEEN_REPLY, ASSURED, CONFIRMED. */
  status: Set<'EXPECTED' | 'SEEN_REPLY' | 'ASSURED' | 'CONFIRMED'>;
  /** Tuples, when known (after NAT the reply tuple differs from the inverted original). */
  orig?: Tuple;
  repl?: Tuple;
  /** NAT applied to the flow: which sides were rewritten. */
  natted: { src: boolean; dst: boolean };
  zone: number;
}

/** A packet. Addresses are integers of the packet's family (see model/addr). */
export interface Packet {
  family: Family;
  /** IP protocol number (6 tcp, 17 udp, 1 icmp, 58 icmpv6, 132 sctp). */
  protocol: number;
  src: bigint;
  dst: bigint;
  sport: number;
  dport: number;
  /** TCP flag bits (TCP_FLAGS). */
  tcpFlags: number;
  icmpType: number;
  icmpCode: number;
  /** Interface it arrived on, when it arrived. */
  inInterface?: string;
  /** Interface it leaves by, once routing has chosen one. */
  outInterface?: string;
  mark: number;
  length: number;
  ttl: number;
  tos: number;
  /** A second-or-later IPv4 fragment (`-f`). */
  fragment: boolean;
  /** The local socket's owner, for locally generated packets. */
  socket?: { uid: number; gid: number; supplGroups: number[] };
  /** Link-layer source address, for packets that arrived on an Ethernet interface. */
  macSource?: string;
  ct: Conntrack;
}
