/**
 * Extension test vectors, as rows: a rule, its canonical save form (`=` when unchanged), its -L
 * option text (with -n and without), and whether the kernel accepts it. Each row is replayed by a
 * pure test and by a kernel test against iptables-save and iptables -L of both backends.
 */
import type { Family } from '../../src/model/addr';
import type { TableName } from '../../src/model/ruleset';

export interface Row {
  /** The rule's arguments after `-A CHAIN`. */
  rule: string;
  /** Canonical iptables-save text after `-A CHAIN`, or `=` when identical to `rule`. */
  save?: string;
  /** The -L -n option text (everything after the destination column, leading space included). */
  list?: string;
  /** The -L option text without -n, when it differs from `list`. */
  listNames?: string;
  /** OK: loads; FAIL: iptables refuses it (and so must podtables). */
  ok: boolean;
  table?: TableName;
  /** The chain to put the rule in; a user chain `VEC` when absent. */
  chain?: string;
  family?: Family;
  /**
   * Commands run inside the kernel test's namespace before the row is restored, as argument
   * arrays (`['ipset', '-exist', 'create', 'pt_a', 'hash:ip']`): kernel objects the rule refers
   * to. They run again for every row, so they must tolerate running twice.
   */
  setup?: string[][];
}

/** Vectors of one extension. */
export interface VectorSet {
  extension: string;
  rows: Row[];
}
