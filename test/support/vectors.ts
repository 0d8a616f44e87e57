/** Turning vector rows into restore text and reading back what iptables -L prints for them. */
import type { Row } from '../vectors/types';
import { BUILTIN_CHAINS, type TableName } from '../../src/model/ruleset';

export const rowTable = (r: Row): TableName => r.table ?? 'filter';
export const rowChain = (r: Row): string => r.chain ?? 'VEC';
export const rowFamily = (r: Row) => r.family ?? 'ipv4';
export const expectedSave = (r: Row): string => `-A ${rowChain(r)} ${r.save === '=' || r.save === undefined ? r.rule : r.save}`;

/** A restore file holding just this row (in a user chain VEC unless the row names a chain). */
export function rowRestore(r: Row): string {
  const t = rowTable(r);
  const chains = BUILTIN_CHAINS[t].map((c) => `:${c} ACCEPT [0:0]`);
  if (!r.chain) chains.push(':VEC - [0:0]');
  return `*${t}\n${chains.join('\n')}\n-A ${rowChain(r)} ${r.rule}\nCOMMIT\n`;
}

/**
 * The option text of the first rule in an `iptables -L CHAIN [-n]` listing: what follows the
 * destination column. iptables prints `%-9s ` target, an invert mark and `%-4s ` protocol,
 * `%c%c ` options, then an invert mark and `%-19s ` for source and for destination; a longer
 * value widens its column.
 */
export function listedOptions(listing: string): string {
  const line = listing.split('\n')[2] ?? '';
  let pos = 0;
  const field = () => /^\S*/.exec(line.slice(pos))![0].length;
  pos += Math.max(field(), 9) + 1;
  pos += 1;
  pos += Math.max(field(), 4) + 1;
  pos += 3;
  for (let k = 0; k < 2; k++) {
    pos += 1;
    pos += Math.max(field(), 19) + 1;
  }
  return line.slice(pos);
}
