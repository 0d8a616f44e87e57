/**
 * Flags as data: one table gives commander its options (help, errors, every unusual spelling)
 * and gives `quickFlags` what it needs to read the plain command lines a pod's init container
 * runs without loading commander at all (about 3 ms of the start-up a pod waits on).
 */
import type { Command } from 'commander';

/** One flag, in commander's notation: `-p, --incoming-proxy-port <port>`, `--ipv6 [bool]`, `--simulate`. */
export interface FlagSpec {
  flags: string;
  description: string;
  default?: string | boolean;
  /** Given again, it adds to a list (the list starts empty). */
  repeat?: boolean;
}

const collect = (v: string, prev: string[]): string[] => [...prev, v];

/** Add the flags to a commander command. */
export function addFlags(c: Command, specs: readonly FlagSpec[]): Command {
  for (const f of specs) {
    if (f.repeat) c.option(f.flags, f.description, collect, []);
    else if (f.default !== undefined) c.option(f.flags, f.description, f.default);
    else c.option(f.flags, f.description);
  }
  return c;
}

interface Parsed {
  short?: string;
  long: string;
  key: string;
  arg: 'required' | 'optional' | 'none';
  spec: FlagSpec;
}

function parseSpec(spec: FlagSpec): Parsed {
  const m = /^(?:(-\w), )?(--[\w-]+)(?: (<[^>]+>|\[[^\]]+\]))?$/.exec(spec.flags);
  if (!m) throw new Error(`flag spec ${spec.flags} is not of the form the quick reader knows`);
  // commander's attribute name: the long flag in camelCase
  const key = m[2].slice(2).replace(/-(\w)/g, (_, c: string) => c.toUpperCase());
  return { short: m[1], long: m[2], key, arg: !m[3] ? 'none' : m[3].startsWith('<') ? 'required' : 'optional', spec };
}

/**
 * The options commander would hand the action for `args` (the words after the command), or
 * undefined when the line holds anything but known flags in the plain spellings: `--flag value`,
 * `--flag=value`, `-f value`, and a bare boolean flag. Help, unknown or abbreviated flags,
 * arguments, `--`, joined short flags, a value that looks like a flag, a flag without its value:
 * commander reads those, and answers as it does.
 */
export function quickFlags(args: readonly string[], specs: readonly FlagSpec[]): Record<string, unknown> | undefined {
  const parsed = specs.map(parseSpec);
  const byName = new Map<string, Parsed>();
  for (const p of parsed) {
    byName.set(p.long, p);
    if (p.short) byName.set(p.short, p);
  }
  const opts: Record<string, unknown> = {};
  for (const p of parsed) if (p.spec.repeat) opts[p.key] = [];
  else if (p.spec.default !== undefined) opts[p.key] = p.spec.default;
  for (let i = 0; i < args.length; i++) {
    const word = args[i];
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const name = eq > 0 ? word.slice(0, eq) : word;
    const p = byName.get(name);
    if (!p || (name === p.short && name !== word)) return undefined;
    let value: string | true;
    if (p.arg === 'none') {
      if (eq > 0) return undefined;
      value = true;
    } else if (eq > 0) value = word.slice(eq + 1);
    else {
      const next = args[i + 1];
      // commander would take a dashed word as the value, or give the optional flag its preset
      if (next === undefined || next.startsWith('-')) return undefined;
      value = next;
      i++;
    }
    if (p.spec.repeat) (opts[p.key] as string[]).push(value as string);
    else opts[p.key] = value;
  }
  return opts;
}
