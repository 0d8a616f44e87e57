/** Reading and printing every text form podtables knows, through one entry point. */
import type { Family } from '../model/addr';
import { parseRestore, type ParseResult } from './restore';

export type InputFormat = 'save' | 'commands' | 'list';

/** Which text form `text` is in. */
export function detectFormat(text: string): InputFormat {
  const head = text.slice(0, 65536);
  if (/^\s*\*\s*[a-z]+\s*$/m.test(head)) return 'save';
  if (/^Chain \S+ \((policy \S+|\d+ references)/m.test(head)) return 'list';
  return 'commands';
}

/** Parse text of any supported form. */
export function parseAny(text: string, opts: { format?: InputFormat | 'auto'; family?: Family } = {}): ParseResult & { format: InputFormat } {
  const format = !opts.format || opts.format === 'auto' ? detectFormat(text) : opts.format;
  switch (format) {
    case 'save':
      return { ...parseRestore(text, { family: opts.family }), format };
    default:
      throw new Error(`input format '${format}' is not supported yet`);
  }
}
