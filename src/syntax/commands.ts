/**
 * Reading `iptables …` command lines as scripts and write-ups hold them: `sudo`, the program name
 * (`iptables`, `ip6tables`, `iptables-legacy`, `iptables-nft`, a path to one), shell quoting,
 * `#` comments, `\` continuations, `;`/`&&`/`||` between commands, and bare `iptables -S` output
 * (`-P`, `-N`, `-A` lines). Each command goes through parseCommand and RulesetBuilder, as
 * iptables itself would run it against an empty table.
 */
import type { Family } from '../model/addr';
import type { Issue } from '../model/issue';
import type { TableName } from '../model/ruleset';
import { RulesetBuilder } from './builder';
import { parseCommand } from './command';
import { guessFamily, type ParseResult } from './restore';
import type { Token } from './tokenize';

export interface CommandsOptions {
  /** The family to read; guessed from the program names when absent (ip6tables only → IPv6). */
  family?: Family;
  /** The table of lines that name none (bare `-S` output of `iptables -t nat -S`); filter when absent. */
  table?: TableName;
}

/** A shell word with the place it started. */
interface Word {
  text: string;
  line: number;
  column: number;
  /** Whether any part was quoted (a quoted `;` or `#` is not an operator). */
  quoted: boolean;
}

/** One command: its words, up to an operator or the end of the (continued) line. */
type Segment = Word[];

const PROGRAMS: Record<string, Family> = {
  iptables: 'ipv4', 'iptables-legacy': 'ipv4', 'iptables-nft': 'ipv4',
  ip6tables: 'ipv6', 'ip6tables-legacy': 'ipv6', 'ip6tables-nft': 'ipv6',
};
const OPERATORS = new Set([';', '&&', '||', '|', '&']);
/** Commands a script puts after `||` to ignore a failure; they change nothing. */
const HARMLESS = new Set(['true', ':']);

/**
 * Split a script into commands the way a POSIX shell splits words: blanks separate, single
 * quotes are literal, double quotes allow `\"`, a backslash escapes the next character and at
 * the end of a line joins the next one; `#` at the start of a word begins a comment.
 */
export function shellSplit(text: string): { segments: Segment[]; issues: Issue[] } {
  const segments: Segment[] = [];
  const issues: Issue[] = [];
  let seg: Segment = [];
  let cur: Word | undefined;
  let quote: '' | "'" | '"' = '';
  let quoteLine = 0, quoteCol = 0;
  const lines = text.split('\n');
  const endSeg = () => {
    if (seg.length) segments.push(seg);
    seg = [];
  };
  const endWord = () => {
    if (cur) {
      if (!cur.quoted && OPERATORS.has(cur.text)) endSeg();
      else seg.push(cur);
    }
    cur = undefined;
  };
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].endsWith('\r') ? lines[n].slice(0, -1) : lines[n];
    let continued = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      const start = () => (cur ??= { text: '', line: n + 1, column: i + 1, quoted: false });
      if (quote === "'") {
        if (c === "'") quote = '';
        else cur!.text += c;
        continue;
      }
      if (quote === '"') {
        if (c === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1])) cur!.text += line[++i];
        else if (c === '"') quote = '';
        else cur!.text += c;
        continue;
      }
      if (c === '\\') {
        if (i === line.length - 1) {
          continued = true;
          break;
        }
        start().text += line[++i];
        continue;
      }
      if (c === ' ' || c === '\t') {
        endWord();
        continue;
      }
      if (c === '#' && !cur) break;
      if (c === "'" || c === '"') {
        start().quoted = true;
        quote = c;
        quoteLine = n + 1;
        quoteCol = i + 1;
        continue;
      }
      // `2>&1` and `&>file` are redirections, not the `&` operator
      if (c === '&' && (/[<>]$/.test(cur?.text ?? '') || line[i + 1] === '>')) {
        start().text += c;
        continue;
      }
      if (c === ';' || c === '&' || c === '|') {
        endWord();
        const op = line[i + 1] === c && c !== ';' ? c + c : c;
        i += op.length - 1;
        endSeg();
        continue;
      }
      start().text += c;
    }
    if (quote) {
      // a quoted newline belongs to the word, as in the shell
      cur!.text += '\n';
      continue;
    }
    if (!continued) {
      endWord();
      endSeg();
    }
  }
  if (quote) issues.push({ severity: 'error', code: 'bad-quote', message: 'unterminated quoted string', line: quoteLine, column: quoteCol });
  endWord();
  endSeg();
  return { segments, issues };
}

/** Drop shell redirections (`2>/dev/null`, `> file`), which do not change what a command does. */
function dropRedirections(words: Word[]): Word[] {
  const out: Word[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i];
    if (!w.quoted && /^\d*(>>?|<)(&\d+)?$/.test(w.text)) {
      if (!/&\d+$/.test(w.text)) i++;
      continue;
    }
    if (!w.quoted && /^(\d*(>>?|<)|&>>?)\S+$/.test(w.text)) continue;
    out.push(w);
  }
  return out;
}

/** The words after the program name, or why the segment is not an iptables command. */
function commandArgs(words: Word[]): { family?: Family; args: Word[] } | { skip: string } | { error: Issue } {
  let i = 0;
  // a shell prompt pasted with the command
  if (words[i]?.text === '$' && !words[i].quoted) i++;
  if (words[i]?.text === 'sudo') {
    i++;
    while (words[i]?.text.startsWith('-')) i++;
  }
  const w = words[i];
  if (!w) return { skip: 'empty command' };
  if (!w.quoted && w.text.startsWith('-')) return { args: words.slice(i) };
  if (/^\$/.test(w.text) && !w.quoted) {
    return { error: { severity: 'error', code: 'shell-variable', line: w.line, column: w.column,
      message: `\`${w.text}' is a shell variable podtables cannot expand: write the command (iptables or ip6tables) in its place` } };
  }
  const base = w.text.slice(w.text.lastIndexOf('/') + 1);
  const family = PROGRAMS[base];
  if (!family) return { skip: `\`${w.text}' is not an iptables command` };
  for (const a of words.slice(i + 1))
    if (!a.quoted && /\$/.test(a.text))
      return { error: { severity: 'error', code: 'shell-variable', line: a.line, column: a.column,
        message: `\`${a.text}' holds a shell variable podtables cannot expand: write its value in its place` } };
  return { family, args: words.slice(i + 1) };
}

/** Parse a script of iptables commands (or `iptables -S` output) into a ruleset. */
export function parseCommands(text: string, opts: CommandsOptions = {}): ParseResult {
  const split = shellSplit(text);
  const issues: Issue[] = [...split.issues];
  const cmds: { family?: Family; args: Word[]; first: Word }[] = [];
  for (const seg of split.segments) {
    const words = dropRedirections(seg);
    if (!words.length) continue;
    const c = commandArgs(words);
    if ('error' in c) issues.push(c.error);
    else if ('skip' in c) {
      if (!HARMLESS.has(words[0].text))
        issues.push({ severity: 'warning', code: 'not-iptables', message: `${c.skip}; skipped`, line: words[0].line, column: words[0].column });
    } else cmds.push({ ...c, first: words[0] });
  }
  const named = cmds.filter((c) => c.family).map((c) => c.family);
  // bare -S lines name no program: their addresses tell
  const family: Family = opts.family ?? (named.length ? (named.every((f) => f === 'ipv6') ? 'ipv6' : 'ipv4') : guessFamily(text));
  const b = new RulesetBuilder(family);
  for (const c of cmds) {
    if (c.family && c.family !== family) {
      issues.push({ severity: 'warning', code: 'other-family', line: c.first.line, column: c.first.column,
        message: `${family === 'ipv4' ? 'ip6tables' : 'iptables'} command skipped: this ruleset is ${family === 'ipv4' ? 'IPv4' : 'IPv6'}` });
      continue;
    }
    runCommand(b, c.args, c.first, family, opts.table ?? 'filter', issues);
  }
  const ruleset = b.build(issues);
  return { ruleset, issues };
}

/**
 * `-nvL` as getopt reads it: `-n -v -L`. Only flags without arguments are split (the ones blog
 * posts combine: -n -v -x -L -S -F -X -Z -4 -6), so `-t`, `-A` and the rest stay as written.
 */
function splitShortFlags(w: Word): Word[] {
  if (w.quoted || !/^-[nvxLSFXZ46]{2,}$/.test(w.text)) return [w];
  return [...w.text.slice(1)].map((c, k) => ({ ...w, text: `-${c}`, column: w.column + (k === 0 ? 0 : k + 1) }));
}

/**
 * Run one command's words. Tokens get their ordinal as column so that an issue parseCommand
 * reports at a token can be moved to that token's real line and column afterwards.
 */
function runCommand(b: RulesetBuilder, words: Word[], first: Word, family: Family, defTable: TableName, issues: Issue[]): void {
  const args = words.flatMap(splitShortFlags);
  const tokens: Token[] = args.map((w, k) => ({ text: w.text, column: k + 1 }));
  const place = (col: number | undefined) => args[(col ?? 1) - 1] ?? args[0] ?? first;
  const relocate = (list: Issue[]) =>
    list.map((i) => {
      const w = place(i.column);
      return { ...i, line: w.line, column: w.column };
    });
  const p = parseCommand(tokens, { family, table: defTable, line: first.line });
  issues.push(...relocate(p.issues));
  if (p.issues.some((i) => i.severity === 'error') || p.otherFamily || !p.command) return;
  const table = p.table ?? defTable;
  const rules = 'rules' in p.command ? p.command.rules : undefined;
  for (const r of rules ?? []) r.line = first.line;
  const found: Issue[] = [];
  b.apply(table, p.command, first.line, 1, found);
  issues.push(...found.map((i) => ({ ...i, line: first.line, column: first.column })));
}
