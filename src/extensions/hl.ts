/** `-m hl`: the IPv6 hop limit (libip6t_hl + ip6t_hl), shaped exactly like IPv4's ttl match. */
import type { MatchExtension } from './types';
import { ttlLike, type TtlInfo } from './ttl';

/** The packet's `ttl` field holds the hop limit for IPv6 packets. */
export const hl: MatchExtension<TtlInfo> = { kind: 'match', name: 'hl', family: 'ipv6', ...ttlLike('hl', 'HL') };
