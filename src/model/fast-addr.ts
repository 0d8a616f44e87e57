/**
 * Address printing on the trace engine's hot path: the same text as formatIP (glibc's inet_ntop),
 * with IPv4 built from a table of the 256 octets instead of printing four numbers per address.
 */
import { formatIP, type Family } from './addr';

const OCTETS: string[] = Array.from({ length: 256 }, (_, i) => String(i));

/** formatIP(value, family), faster for IPv4. */
export function formatAddr(value: bigint, family: Family): string {
  if (family !== 'ipv4') return formatIP(value, family);
  const v = Number(value);
  return OCTETS[v >>> 24] + '.' + OCTETS[(v >>> 16) & 255] + '.' + OCTETS[(v >>> 8) & 255] + '.' + OCTETS[v & 255];
}
