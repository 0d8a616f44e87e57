/** Name tables for `-L` without `-n`, read from this machine's /etc files as iptables reads them. */
import { readFileSync } from 'node:fs';
import type { NameTables } from '../extensions/types';

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

/** Services (first name per port/proto, as getservbyport returns), users and groups of this machine. */
export function systemNames(): NameTables {
  const services = new Map<string, string>();
  for (const line of read('/etc/services').split('\n')) {
    const m = /^([^#\s]+)\s+(\d+)\/(\w+)/.exec(line);
    if (m && !services.has(`${m[2]}/${m[3]}`)) services.set(`${m[2]}/${m[3]}`, m[1]);
  }
  const ids = (path: string) => {
    const map = new Map<string, string>();
    for (const line of read(path).split('\n')) {
      const f = line.split(':');
      if (f.length > 2 && !map.has(f[2])) map.set(f[2], f[0]);
    }
    return map;
  };
  return { services, users: ids('/etc/passwd'), groups: ids('/etc/group') };
}
