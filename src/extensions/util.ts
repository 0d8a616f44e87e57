/**
 * Small parsers and printers that several extensions share, matching libxtables' helpers
 * (xtables_parse_port, xtables_strtoui, xtables_save_string, xtables_print_mark_mask).
 */
import { ExtensionError, type GivenOption, type NameTables } from './types';

/** Well-known service names iptables resolves through /etc/services (a netbase subset). */
export const SERVICES: Record<string, number> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, bootps: 67, bootpc: 68, tftp: 69, http: 80,
  kerberos: 88, pop3: 110, sunrpc: 111, auth: 113, ntp: 123, 'netbios-ns': 137, 'netbios-dgm': 138,
  'netbios-ssn': 139, imap2: 143, snmp: 161, 'snmp-trap': 162, bgp: 179, ldap: 389, https: 443,
  'microsoft-ds': 445, isakmp: 500, syslog: 514, submission: 587, ldaps: 636, imaps: 993, pop3s: 995,
  openvpn: 1194, nfs: 2049, mysql: 3306, postgresql: 5432, 'ipsec-nat-t': 4500,
};

/** Parse an unsigned integer (decimal, 0x hex or 0 octal, as strtoul with base 0) within [min, max]. */
export function parseUint(text: string, min: number, max: number, what: string): number {
  let v: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) v = parseInt(text.slice(2), 16);
  else if (/^0[0-7]+$/.test(text)) v = parseInt(text, 8);
  else if (/^\d+$/.test(text)) v = Number(text);
  else throw new ExtensionError(`invalid ${what} "${text}"`);
  if (v < min || v > max) throw new ExtensionError(`${what} "${text}" out of range (${min}-${max})`);
  return v;
}

/** Parse a port number or a service name. */
export function parsePort(text: string, what = 'port'): number {
  if (/^\d+$/.test(text)) {
    const v = Number(text);
    if (v > 65535) throw new ExtensionError(`invalid ${what} "${text}": out of range (0-65535)`);
    return v;
  }
  const s = SERVICES[text];
  if (s === undefined) throw new ExtensionError(`invalid ${what}/service "${text}" specified`);
  return s;
}

/** Parse `P`, `L:U`, `L:` or `:U` into [min, max]. */
export function parsePortRange(text: string, what = 'port'): [number, number] {
  const i = text.indexOf(':');
  if (i < 0) {
    const p = parsePort(text, what);
    return [p, p];
  }
  const lo = i === 0 ? 0 : parsePort(text.slice(0, i), what);
  const hi = i === text.length - 1 ? 65535 : parsePort(text.slice(i + 1), what);
  if (lo > hi) throw new ExtensionError(`invalid portrange "${text}" (min > max)`);
  return [lo, hi];
}

/** A port as -L prints it: its service name unless numeric or unknown. */
export function listPort(port: number, proto: string, ctx: { numeric: boolean; names?: NameTables }): string {
  if (!ctx.numeric) {
    const n = ctx.names?.services?.get(`${port}/${proto}`);
    if (n) return n;
  }
  return String(port);
}

/** A string option as xtables_save_string prints it: bare when safe, else quoted with escapes. */
export function saveString(value: string): string {
  if (/^[-_0-9a-zA-Z]+$/.test(value)) return ` ${value}`;
  return ` "${value.replace(/["\\']/g, (c) => '\\' + c)}"`;
}

/** `0x..` as iptables prints marks. */
export const hex = (v: number): string => '0x' + (v >>> 0).toString(16);

/** Parse `value[/mask]` marks; the mask defaults to all ones. */
export function parseMarkMask(text: string, what = 'mark'): { value: number; mask: number } {
  const [v, m] = text.split('/', 2);
  const value = parseUint(v, 0, 0xffffffff, what);
  const mask = m === undefined ? 0xffffffff : parseUint(m, 0, 0xffffffff, `${what} mask`);
  return { value, mask };
}

/** `value[/mask]` as xtables_save/print_mark_mask prints it: the mask only when not all ones. */
export function formatMarkMask(value: number, mask: number): string {
  return mask === 0xffffffff ? hex(value) : `${hex(value)}/${hex(mask)}`;
}

/** Leading ` !` when inverted, as save functions print it. */
export const bang = (invert: boolean): string => (invert ? ' !' : '');

/** The last given option of that name (iptables keeps the last value given). */
export function lastOpt(opts: GivenOption[], name: string): GivenOption | undefined {
  for (let i = opts.length - 1; i >= 0; i--) if (opts[i].name === name) return opts[i];
  return undefined;
}

/** Reject an option given twice, with the wording iptables uses. */
export function once(opts: GivenOption[], ext: string): void {
  const seen = new Set<string>();
  for (const o of opts) {
    if (seen.has(o.name)) throw new ExtensionError(`${ext}: "--${o.name}" option may only be specified once`, o.token);
    seen.add(o.name);
  }
}

/** Run `fn` and attach the option's token to any ExtensionError it throws. */
export function at<T>(o: GivenOption, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ExtensionError && e.token === undefined) e.token = o.token;
    throw e;
  }
}
