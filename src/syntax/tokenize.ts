/**
 * Splitting a line into argv the way iptables-restore does (add_param_to_argv in 1.8.9, checked
 * against the kernel's restore): blanks separate; a double quote opens a quoted part that joins the
 * word before it (`foo"bar baz"` is one word) and whose closing quote ends the word (`"foo"bar`
 * is two); inside quotes a backslash takes the next character literally (`\n` is `n`); outside
 * quotes a backslash is an ordinary character. Single quotes are ordinary characters too.
 */

/** One argv word with its 1-based column in the line. */
export interface Token {
  text: string;
  column: number;
  /** Whether any part of the word was inside double quotes (verbatim printing re-quotes it). */
  quoted?: boolean;
}

/** Split `line` into tokens; returns an error text and column for an unterminated quote. */
export function tokenize(line: string): { tokens: Token[]; error?: { message: string; column: number } } {
  if (line.indexOf('"') < 0) return { tokens: plainWords(line) };
  const tokens: Token[] = [];
  let cur = '';
  let start = -1;
  let quoteAt = -1;
  let quoted = false;
  let escaped = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoteAt >= 0) {
      if (escaped) {
        cur += c;
        escaped = false;
      } else if (c === '\\') escaped = true;
      else if (c === '"') {
        // the closing quote ends the word, as add_param_to_argv does
        tokens.push({ text: cur, column: start + 1, quoted: true });
        cur = '';
        start = -1;
        quoteAt = -1;
        quoted = false;
      } else cur += c;
      continue;
    }
    if (c === ' ' || c === '\t' || c === '\n') {
      if (start >= 0) tokens.push(quoted ? { text: cur, column: start + 1, quoted } : { text: cur, column: start + 1 });
      cur = '';
      start = -1;
      quoted = false;
      continue;
    }
    if (start < 0) start = i;
    if (c === '"') {
      quoteAt = i;
      quoted = true;
    } else cur += c;
  }
  if (quoteAt >= 0) return { tokens, error: { message: 'unterminated quoted string', column: quoteAt + 1 } };
  if (start >= 0) tokens.push(quoted ? { text: cur, column: start + 1, quoted } : { text: cur, column: start + 1 });
  return { tokens };
}

/** Words of a line without quotes: substrings between blanks (the common case, kept cheap). */
function plainWords(line: string): Token[] {
  const tokens: Token[] = [];
  const n = line.length;
  let i = 0;
  while (i < n) {
    let c = line.charCodeAt(i);
    while (i < n && (c === 32 || c === 9 || c === 10)) c = line.charCodeAt(++i);
    if (i >= n) break;
    const start = i;
    while (i < n && c !== 32 && c !== 9 && c !== 10) c = line.charCodeAt(++i);
    tokens.push({ text: line.slice(start, i), column: start + 1 });
  }
  return tokens;
}
