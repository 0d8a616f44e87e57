/**
 * Hook priorities as data (include/uapi/linux/netfilter_ipv4.h, enum nf_ip_hook_priorities): the
 * order in which tables see a packet at each hook derives from this one table, never from lists.
 */
import { BUILTIN_CHAINS, TABLE_NAMES, type Hook, type TableName } from '../model/ruleset';

/** NF_IP_PRI_*: lower runs first. nat registers twice: destination NAT early, source NAT late. */
export const PRIORITY = {
  raw: -300,
  conntrack: -200,
  mangle: -150,
  natDst: -100,
  filter: 0,
  security: 50,
  natSrc: 100,
} as const;

/** The hooks where nat rewrites the destination (NF_NAT_MANIP_DST); the others rewrite the source. */
export const NAT_DST_HOOKS: readonly Hook[] = ['PREROUTING', 'OUTPUT'];

/** The priority a table's chain runs at on a hook. */
export function tablePriority(table: TableName, hook: Hook): number {
  if (table === 'nat') return NAT_DST_HOOKS.includes(hook) ? PRIORITY.natDst : PRIORITY.natSrc;
  return PRIORITY[table];
}

const ORDER = new Map<Hook, TableName[]>();
/** The tables registered at a hook, in the order the kernel calls them (derived once from PRIORITY). */
export function tablesAt(hook: Hook): readonly TableName[] {
  let o = ORDER.get(hook);
  if (!o) {
    o = TABLE_NAMES.filter((t) => BUILTIN_CHAINS[t].includes(hook)).sort((a, b) => tablePriority(a, hook) - tablePriority(b, hook));
    ORDER.set(hook, o);
  }
  return o;
}

/** Whether conntrack (priority -200) has run before this table at this hook: raw sees no state yet. */
export const afterConntrack = (table: TableName, hook: Hook): boolean => tablePriority(table, hook) > PRIORITY.conntrack;
