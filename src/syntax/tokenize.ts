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

/**
 * The words of a line as parallel lists, which is what the command parser reads: a dump of
 * 100,000 rules has some 1.6 million words, and an object for each is garbage to collect.
 */
export interface Words {
  texts: string[];
  /** 1-based column of each word. */
  columns: number[];
  /** Whether each word was (partly) quoted; absent when the line has no double quote. */
  quoted?: boolean[];
  /** An unterminated quote: the words before it are kept. */
  error?: { message: string; column: number };
}

/** The quoted flags of a reused Words whose line had no quote, kept for the next line that has one. */
let spareQuoted: boolean[] | undefined;

/** Split `line` into tokens; returns an error text and column for an unterminated quote. */
export function tokenize(line: string): { tokens: Token[]; error?: { message: string; column: number } } {
  const w = splitWords(line);
  const tokens: Token[] = [];
  for (let k = 0; k < w.texts.length; k++)
    tokens.push(w.quoted?.[k] ? { text: w.texts[k], column: w.columns[k], quoted: true } : { text: w.texts[k], column: w.columns[k] });
  return w.error ? { tokens, error: w.error } : { tokens };
}

/**
 * Split `line` into words from `from` on, as tokenize does; columns count from the line's start. A
 * reader of many lines may pass the previous line's words back as `into` once it is done with
 * them: their lists are reused.
 */
export function splitWords(line: string, into?: Words, from = 0): Words {
  const w: Words = into ?? { texts: [], columns: [] };
  const texts = w.texts;
  const columns = w.columns;
  const n = line.length;
  const quote = line.indexOf('"', from);
  // the quoted flags are kept only for a line with a quote (a spare list waits for the next one)
  let quotedAt: boolean[] | undefined;
  if (quote >= 0) {
    quotedAt = w.quoted ?? spareQuoted ?? [];
    spareQuoted = undefined;
  } else if (w.quoted) spareQuoted = w.quoted;
  w.quoted = quotedAt;
  w.error = undefined;
  // words before the first quote, tab or newline are found by searching for the next space (a
  // native search); from there on the line is read a character at a time
  let slow = quote < 0 ? n : quote;
  const tab = line.indexOf('\t', from);
  if (tab >= 0 && tab < slow) slow = tab;
  const nl = line.indexOf('\n', from);
  if (nl >= 0 && nl < slow) slow = nl;
  let k = 0;
  let i = from;
  while (i < n) {
    if (line.charCodeAt(i) === 32) {
      i++;
      continue;
    }
    if (i >= slow) break;
    let e = line.indexOf(' ', i);
    if (e < 0) e = n;
    if (e > slow) break;
    texts[k] = line.slice(i, e);
    columns[k] = i + 1;
    if (quotedAt) quotedAt[k] = false;
    k++;
    i = e + 1;
  }
  if (i < n) k = readChars(line, i, w, k);
  texts.length = k;
  columns.length = k;
  if (quotedAt) quotedAt.length = k;
  return w;
}

/**
 * The words of `line` from `from` (a word's start) on, one character at a time, added to `w` from
 * its word `k` on; the number of words after them. An unterminated quote is left in `w.error`.
 */
function readChars(line: string, from: number, w: Words, k: number): number {
  const texts = w.texts;
  const columns = w.columns;
  const quotedAt = w.quoted;
  const n = line.length;
  // a word is built from slices of the line (one per run between quotes and escapes), never
  // character by character: a string grown one character at a time is a chain of tiny pieces
  let cur = '';
  let seg = from;
  let start = -1;
  let quoteAt = -1;
  let quoted = false;
  for (let i = from; i < n; i++) {
    const c = line.charCodeAt(i);
    if (quoteAt >= 0) {
      if (c === 92) {
        // `\x` inside quotes is `x`, whatever x is (a quote or a backslash too)
        cur += line.slice(seg, i);
        seg = ++i;
      } else if (c === 34) {
        // the closing quote ends the word, as add_param_to_argv does
        texts[k] = cur + line.slice(seg, i);
        columns[k] = start + 1;
        quotedAt![k++] = true;
        cur = '';
        start = -1;
        quoteAt = -1;
        quoted = false;
      }
      continue;
    }
    if (c === 32 || c === 9 || c === 10) {
      if (start >= 0) {
        texts[k] = cur + line.slice(seg, i);
        columns[k] = start + 1;
        if (quotedAt) quotedAt[k] = quoted;
        k++;
      }
      cur = '';
      start = -1;
      quoted = false;
      continue;
    }
    if (start < 0) {
      start = i;
      seg = i;
    }
    if (c === 34) {
      cur += line.slice(seg, i);
      seg = i + 1;
      quoteAt = i;
      quoted = true;
    }
  }
  if (quoteAt >= 0) w.error = { message: 'unterminated quoted string', column: quoteAt + 1 };
  else if (start >= 0) {
    texts[k] = cur + line.slice(seg, n);
    columns[k] = start + 1;
    if (quotedAt) quotedAt[k] = quoted;
    k++;
  }
  return k;
}
