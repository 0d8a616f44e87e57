/** Reading and printing every text form podtables knows, through one entry point. */
import type { Family } from '../model/addr';
import type { TableName } from '../model/ruleset';
import type { NameTables } from '../extensions/types';
import { parseCommands } from './commands';
import { parseJson } from './json';
import { parseListing } from './listing';
import { parseRestore, type ParseResult } from './restore';

export type InputFormat = 'save' | 'commands' | 'list' | 'json';

/** Which text form `text` is in. */
export function detectFormat(text: string): InputFormat {
  const head = text.slice(0, 65536);
  if (/^\s*\{/.test(head)) return 'json';
  if (/^\s*\*\s*[a-z]+\s*$/m.test(head)) return 'save';
  if (/^\s*Chain \S+ \((policy \S+|\d+ references)/m.test(head)) return 'list';
  return 'commands';
}

export interface ParseAnyOptions {
  format?: InputFormat | 'auto';
  family?: Family;
  /** commands: the table of lines that name none; list: the table of a listing that does not say. */
  table?: TableName;
  /** list: names to turn back into numbers (services, users, hosts). */
  names?: NameTables;
}

/** Parse text of any supported form. */
export function parseAny(text: string, opts: ParseAnyOptions = {}): ParseResult & { format: InputFormat } {
  const format = !opts.format || opts.format === 'auto' ? detectFormat(text) : opts.format;
  switch (format) {
    case 'save':
      return { ...parseRestore(text, { family: opts.family }), format };
    case 'commands':
      return { ...parseCommands(text, { family: opts.family, table: opts.table }), format };
    case 'list':
      return { ...parseListing(text, { family: opts.family, table: opts.table, names: opts.names }), format };
    case 'json':
      return { ...parseJson(text), format };
  }
}
