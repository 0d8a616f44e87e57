/**
 * Address types as the addrtype match asks the routing tables for them (inet_addr_type_dev_table):
 * LOCAL for the host's own addresses (all of 127/8), BROADCAST, MULTICAST, UNSPEC, else UNICAST.
 */
import { maskOf, type Family } from '../model/addr';
import { isLocal, type Host } from '../model/host';

/** The kernel's types of `addr`; with `iface`, LOCAL only for an address of that interface (--limit-iface-*). */
export function addrTypes(h: Host, family: Family, addr: bigint, iface?: string): Set<string> {
  const out = new Set<string>();
  if (addr === 0n) return out.add('UNSPEC');
  if (family === 'ipv4') {
    if (addr >> 28n === 0xen) return out.add('MULTICAST');
    if (addr === 0xffffffffn) return out.add('BROADCAST');
    for (const i of h.interfaces)
      for (const a of i.addresses) {
        if (a.ip.family !== 'ipv4' || a.prefix >= 31) continue;
        const m = maskOf(a.prefix, 'ipv4');
        if ((a.ip.value & m) === (addr & m) && (addr | m) === 0xffffffffn && (!iface || iface === i.name)) return out.add('BROADCAST');
      }
  } else if (addr >> 120n === 0xffn) return out.add('MULTICAST');
  const ip = { family, value: addr };
  if (iface ? h.interfaces.find((i) => i.name === iface)?.addresses.some((a) => a.ip.family === family && a.ip.value === addr) || (iface === 'lo' && isLocal(h, ip) && family === 'ipv4' && addr >> 24n === 127n) : isLocal(h, ip)) out.add('LOCAL');
  else out.add('UNICAST');
  return out;
}
