/**
 * Reading Istio's dry-run golden files: restore scripts for IPv4 then IPv6 (tables in alphabetical
 * order within each family), with the `iptables-save` / `ip6tables-save` lines its stub prints.
 */
import { parseRestore } from '../../src/syntax/restore';
import { saveRuleset } from '../../src/syntax/save';
import type { NameTables } from '../../src/extensions/types';

/** The golden's rules per family, in podtables' canonical save form ('' for a family with none). */
export function goldenByFamily(text: string, names?: NameTables): { v4: string; v6: string } {
  const blocks: { ipv4: string[]; ipv6: string[] } = { ipv4: [], ipv6: [] };
  let family: 'ipv4' | 'ipv6' = 'ipv4';
  let last = '';
  for (const line of text.split('\n')) {
    if (line === 'iptables-save' || line === 'ip6tables-save' || line.trim() === '') continue;
    const m = /^\*\s*(\w+)/.exec(line);
    if (m) {
      // a table that does not sort after the previous one starts the IPv6 part
      if (last && m[1] <= last) family = 'ipv6';
      last = m[1];
    }
    blocks[family].push(line);
  }
  const canon = (lines: string[], fam: 'ipv4' | 'ipv6') => {
    if (!lines.length) return '';
    const res = parseRestore(lines.join('\n') + '\n', { family: fam, noflush: true, names });
    const errors = res.issues.filter((i) => i.severity === 'error');
    if (errors.length) throw new Error(`golden does not parse: ${errors.map((e) => `${e.line}:${e.column} ${e.message}`).join('; ')}`);
    return saveRuleset(res.ruleset);
  };
  return { v4: canon(blocks.ipv4, 'ipv4'), v6: canon(blocks.ipv6, 'ipv6') };
}
