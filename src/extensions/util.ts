/**
 * Small parsers and printers that several extensions share, matching libxtables' helpers
 * (xtables_parse_port, xtables_strtoui, xtables_save_string, xtables_print_mark_mask).
 */
import { ExtensionError, type EvalContext, type GivenOption, type NameTables } from './types';

/** Well-known service names iptables resolves through /etc/services (a netbase subset). */
export const SERVICES: Record<string, number> = {
  ftp: 21, ssh: 22, telnet: 23, smtp: 25, domain: 53, bootps: 67, bootpc: 68, tftp: 69, http: 80,
  kerberos: 88, pop3: 110, sunrpc: 111, auth: 113, ntp: 123, 'netbios-ns': 137, 'netbios-dgm': 138,
  'netbios-ssn': 139, imap2: 143, snmp: 161, 'snmp-trap': 162, bgp: 179, ldap: 389, https: 443,
  'microsoft-ds': 445, isakmp: 500, syslog: 514, submission: 587, ldaps: 636, imaps: 993, pop3s: 995,
  openvpn: 1194, nfs: 2049, mysql: 3306, postgresql: 5432, 'ipsec-nat-t': 4500,
};

/**
 * The services by name in a map: looking a word up as an object's key first searches the engine's
 * table of key strings, which costs every port of a dump (`8080`) a search.
 */
const SERVICE_NUMBERS = new Map(Object.entries(SERVICES));

/** The port of a service name, if the table knows it (own keys only: `toString` is no service). */
export function serviceNumber(name: string): number | undefined {
  return SERVICE_NUMBERS.get(name);
}

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
  const v = decimal(text);
  if (v >= 0) {
    if (v > 65535) throw new ExtensionError(`invalid ${what} "${text}": out of range (0-65535)`);
    return v;
  }
  const s = serviceNumber(text);
  if (s === undefined) throw new ExtensionError(`invalid ${what}/service "${text}" specified`);
  return s;
}

/** Parse `P`, `L:U`, `L:` or `:U` into [min, max]; min > max is refused unless `reversedOk` (libxt_udp keeps it). */
export function parsePortRange(text: string, what = 'port', reversedOk = false): [number, number] {
  const i = text.indexOf(':');
  if (i < 0) {
    const p = parsePort(text, what);
    return [p, p];
  }
  const lo = i === 0 ? 0 : parsePort(text.slice(0, i), what);
  const hi = i === text.length - 1 ? 65535 : parsePort(text.slice(i + 1), what);
  if (lo > hi && !reversedOk) throw new ExtensionError(`invalid portrange "${text}" (min > max)`);
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
  // one pass tells the three cases apart: all of [-_0-9a-zA-Z] (bare), nothing to escape
  // (quoted), or a quote or backslash to escape
  let bare = value.length > 0;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 45 || c === 95) continue;
    if (c === 34 || c === 92 || c === 39) return ` "${value.replace(/["\\']/g, (q) => '\\' + q)}"`;
    bare = false;
  }
  return bare ? ' ' + value : ' "' + value + '"';
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
  const o = firstRepeat(opts);
  if (o) throw new ExtensionError(`${ext}: "--${o.name}" option may only be specified once`, o.token);
}

/**
 * The first option whose name was given before it, if any. A rule has a handful of options, so
 * comparing pairs is quicker than building a set for every rule of a large dump.
 */
function firstRepeat(opts: GivenOption[]): GivenOption | undefined {
  for (let i = 1; i < opts.length; i++) if (givenBefore(opts, i)) return opts[i];
  return undefined;
}

/** Whether the name of option `i` was given before it. */
function givenBefore(opts: GivenOption[], i: number): boolean {
  const name = opts[i].name;
  for (let j = 0; j < i; j++) if (opts[j].name === name) return true;
  return false;
}

/** The error `e` with option `o`'s token attached when it is an ExtensionError without one (to rethrow). */
export function pin(e: unknown, o: GivenOption): unknown {
  if (e instanceof ExtensionError && e.token === undefined) e.token = o.token;
  return e;
}

/** The value of a text of one or more decimal digits, or -1 for any other text (no pattern needed). */
export function decimal(text: string): number {
  const n = text.length;
  if (n === 0) return -1;
  let v = 0;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return -1;
    v = v * 10 + (c - 48);
  }
  // beyond 15 digits the sum above may round where Number() does not
  return n > 15 ? Number(text) : v;
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

/** Reject an option given twice, worded as libxtables' xtables_option_parse words it (1.8.9). */
export function onlyOnce(opts: GivenOption[], ext: string): void {
  const o = firstRepeat(opts);
  if (o) throw new ExtensionError(`${ext}: option "--${o.name}" can only be used once.`, o.token);
}

/**
 * Refuse options that exclude each other. `order` is the extension's option table order: iptables
 * names the pair in that order whichever came first on the line (`--nfmask` … `--mask`).
 */
export function exclusive(opts: GivenOption[], ext: string, order: readonly string[], group: readonly string[]): void {
  const given = order.filter((n) => group.includes(n) && opts.some((o) => o.name === n));
  if (given.length > 1) {
    const tok = opts.find((o) => o.name === given[1])?.token;
    throw new ExtensionError(`${ext}: option "--${given[0]}" cannot be used together with "--${given[1]}".`, tok);
  }
}

/** A 32-bit value or `value/mask`, with libxtables' wording for a bad one. */
export function parseMarkOpt(o: GivenOption, ext: string, withMask: boolean): { value: number; mask: number } {
  const bad = () =>
    new ExtensionError(withMask
      ? `${ext}: bad integer value for option "--${o.name}", or out of range.`
      : `${ext}: bad value for option "--${o.name}", or out of range (0-4294967295).`, o.token);
  const text = o.args[0];
  if (!withMask && text.includes('/')) throw bad();
  if (text.split('/').length > 2) throw new ExtensionError(`${ext}: trailing garbage after value for option "--${o.name}".`, o.token);
  try {
    return parseMarkMask(text);
  } catch {
    throw bad();
  }
}

/**
 * How MARK and CONNMARK print a `--set-xmark value/mask` in -L: the operation the pair stands
 * for (`and`, `or`, `xor`, `set`) when there is one, else `xset` (libxt_MARK mark_tg_print).
 */
export function listXmark(name: string, value: number, mask: number): string {
  if (value === 0) return ` ${name} and ${hex(~mask)}`;
  if (value === mask) return ` ${name} or ${hex(value)}`;
  if (mask === 0) return ` ${name} xor ${hex(value)}`;
  if (mask === 0xffffffff) return ` ${name} set ${hex(value)}`;
  return ` ${name} xset ${hex(value)}/${hex(mask)}`;
}

/** The kernel's `(mark & ~mask) ^ value` (xt_MARK, xt_CONNMARK set mode), on unsigned 32 bits. */
export const xmark = (mark: number, value: number, mask: number): number => ((mark & ~mask) ^ value) >>> 0;

/**
 * strtoul with base 0 over the whole text, as libxtables' xtables_strtoul reads numbers: leading
 * blanks and a `+` are skipped, `0x` is hex and a leading 0 octal; NaN when anything is left over
 * (a `-` sign makes strtoul wrap, which every caller's range then refuses).
 */
export function strtoul(text: string): number {
  const t = text.replace(/^\s+/, '').replace(/^\+/, '');
  if (/^0[xX][0-9a-fA-F]+$/.test(t)) return parseInt(t.slice(2), 16);
  if (/^0[0-7]*$/.test(t)) return parseInt(t, 8);
  if (/^[1-9]\d*$/.test(t)) return Number(t);
  return NaN;
}

/** An unsigned integer as libxtables' XTTYPE_UINT* parsers read it, with their wording for a bad one. */
export function xtUint(o: GivenOption, ext: string, min: number, max: number, text = o.args[0]): number {
  const v = strtoul(text);
  if (!(v >= min && v <= max))
    throw new ExtensionError(`${ext}: bad value for option "--${o.name}", or out of range (${min}-${max}).`, o.token);
  return v;
}

/** The evaluation clock in milliseconds (limit, recent): without one, every packet arrives at the same instant. */
export const nowMs = (ctx: EvalContext): number => ctx.now ?? 0;

/** An unsigned option value in [min, max], with libxtables' wording for a bad one. */
export function parseUintOpt(o: GivenOption, ext: string, min: number, max: number): number {
  try {
    return parseUint(o.args[0], min, max, o.name);
  } catch {
    throw new ExtensionError(`${ext}: bad value for option "--${o.name}", or out of range (${min}-${max}).`, o.token);
  }
}

/**
 * Walk the options in input order as xtables_option_parse does: a repeated option is refused
 * where it occurs (`multi` ones excepted), so an earlier bad value is reported first, and every
 * ExtensionError is pinned to its option.
 */
export function eachOnce(opts: GivenOption[], ext: string, fn: (o: GivenOption) => void, multi: readonly string[] = []): void {
  for (let i = 0; i < opts.length; i++) {
    const o = opts[i];
    if (givenBefore(opts, i) && !multi.includes(o.name))
      throw new ExtensionError(`${ext}: option "--${o.name}" can only be used once.`, o.token);
    try {
      fn(o);
    } catch (e) {
      if (e instanceof ExtensionError && e.token === undefined) e.token = o.token;
      throw e;
    }
  }
}

/**
 * An IPv4 address as glibc's inet_aton reads it, which is what xtables_numeric_to_ipaddr (and so
 * iprange and conntrack) call: 1 to 4 parts, each decimal, 0x hex or 0 octal, the last one
 * filling the remaining bytes (`010.1` is 8.0.0.1). Null when it is not one.
 */
export function inetAton(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length > 4) return null;
  const nums = parts.map((p) => strtoul(p));
  if (nums.some((n, k) => !Number.isFinite(n) || /^[\s+]/.test(parts[k]))) return null;
  const lastBits = 8 * (5 - parts.length);
  let v = 0n;
  for (let k = 0; k < nums.length - 1; k++) {
    if (nums[k] > 255) return null;
    v = (v << 8n) | BigInt(nums[k]);
  }
  const last = nums[nums.length - 1];
  if (last >= 2 ** Math.min(lastBits, 32)) return null;
  return (v << BigInt(lastBits)) | BigInt(last);
}
