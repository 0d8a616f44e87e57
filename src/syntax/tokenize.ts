/**
 * Splitting a line into argv the way iptables-restore does (add_param_to_argv): blanks separate,
 * double quotes group, and a backslash inside quotes escapes the next character.
 */

/** One argv word with its 1-based column in the line. */
export interface Token {
  text: string;
  column: number;
}

/** Split `line` into tokens; returns an error text and column for an unterminated quote. */
export function tokenize(line: string): { tokens: Token[]; error?: { message: string; column: number } } {
  const tokens: Token[] = [];
  let cur = '';
  let start = -1;
  let quoteAt = -1;
  let escaped = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoteAt >= 0) {
      if (escaped) {
        cur += c;
        escaped = false;
      } else if (c === '\\') escaped = true;
      else if (c === '"') quoteAt = -1;
      else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (start >= 0) tokens.push({ text: cur, column: start + 1 });
      cur = '';
      start = -1;
      continue;
    }
    if (start < 0) start = i;
    if (c === '"') quoteAt = i;
    else cur += c;
  }
  if (quoteAt >= 0) return { tokens, error: { message: 'unterminated quoted string', column: quoteAt + 1 } };
  if (start >= 0) tokens.push({ text: cur, column: start + 1 });
  return { tokens };
}
