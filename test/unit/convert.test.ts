/** `podtables convert` wires every reader and printer: -S, -L with its flags, JSON, and errors with exit code 2. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { FIXTURES, loadCaptured, rulesOf } from '../support/listings';

const run = (args: string[], input: string) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'convert', ...args], { input, encoding: 'utf8' });

const nat = FIXTURES.find((f) => f.name === 'nat4')!;

test('--to S and --to list with a chain and -n -v -x --line-numbers print what the kernel printed', () => {
  const cap = loadCaptured(nat)!;
  const s = run(['--to', 'S', '-t', 'nat', 'PROXY_INIT_REDIRECT', '-'], rulesOf(nat));
  assert.equal(s.status, 0, s.stderr);
  assert.equal(s.stdout, cap.outputs['-t nat -S PROXY_INIT_REDIRECT']);
  const l = run(['--to', 'list', '-t', 'nat', '-n', '-v', '-x', '--line-numbers', '-'], rulesOf(nat));
  assert.equal(l.status, 0, l.stderr);
  assert.equal(l.stdout, cap.outputs['-t nat -L -n -v -x --line-numbers']);
});

test('a listing converts to save form and JSON converts back to the same save form', () => {
  const cap = loadCaptured(nat)!;
  const save = run(['--to', 'save', '-t', 'nat', '-'], cap.outputs['-t nat -L -n -v -x']);
  assert.equal(save.status, 0, save.stderr);
  const json = run(['--to', 'json', '-'], save.stdout);
  assert.equal(json.status, 0, json.stderr);
  const back = run(['--to', 'save', '-'], json.stdout);
  assert.equal(back.stdout, save.stdout);
  assert.match(save.stdout, /-A PROXY_INIT_REDIRECT -p tcp -j REDIRECT --to-ports 4143/);
});

test('bad input ends with FILE:LINE:COL, the line, and exit code 2', () => {
  const r = run(['--from', 'commands', '-'], 'iptables -N X\n$IPT -A X -j ACCEPT\n');
  assert.equal(r.status, 2);
  assert.match(r.stderr, /<stdin>:2:1: `\$IPT' is a shell variable/);
  const c = run(['--to', 'list', '-t', 'nat', 'NOPE', '-'], rulesOf(nat));
  assert.equal(c.status, 2);
  assert.match(c.stderr, /chain `NOPE' does not exist in table `nat'/);
});
