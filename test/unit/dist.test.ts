/**
 * The published build (dist/, made by scripts/build.mjs; npm test builds it first): one bundle per
 * command with a V8 code cache this node accepts, picked by the entry from the command line, and
 * answering as the development entry does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import Module from 'node:module';
import { dirname, join } from 'node:path';
import { Script } from 'node:vm';
import { bundleFile, bundleFor } from '../../src/cli/argv';
import commands from '../../src/cli/commands.json';
import { COMMANDS } from '../../src/cli/loaders';
import { run } from '../../src/kernel/exec';
import { distEntry, podtables } from '../support/cli';

const DIST = dirname(distEntry());
const argv = (...words: string[]) => ['node', 'podtables', ...words];

test('the entry picks the bundle of the command run; the plugin alone for a bare `cni`; every command otherwise', () => {
  assert.equal(bundleFor(argv('init', 'linkerd', '-p', '4143')), 'init-linkerd', "a pod's init container loads Linkerd's code only");
  assert.equal(bundleFor(argv('verify', 'istio', '--help')), 'verify-istio');
  assert.equal(bundleFor(argv('init', '--help')), 'init');
  assert.equal(bundleFor(argv('init', 'nosuchmesh')), 'init', 'the command answers for its unknown subcommand');
  assert.equal(bundleFor(argv('kube-proxy', '--help')), 'kube-proxy');
  assert.equal(bundleFor(argv('cni')), 'cni-plugin');
  assert.equal(bundleFor(argv('cni', 'install', '--once')), 'cni');
  assert.equal(bundleFor(argv('--version')), 'validate', 'the version from a small bundle');
  assert.equal(bundleFor(argv('-V')), 'validate');
  for (const words of [[], ['--help'], ['--version', '--help'], ['help', 'init'], ['nosuch'], ['constructor'], ['__proto__'], ['init linkerd']]) assert.equal(bundleFor(argv(...words)), 'all', words.join(' '));
});

test('every command has its bundle and a code cache this node accepts', () => {
  for (const name of [...Object.keys(commands).map(bundleFile), 'all', 'cni-plugin']) {
    const file = join(DIST, 'cli', `${name}.cjs`);
    assert.ok(existsSync(file) && existsSync(`${file}.cache`), `${name}: bundle and cache`);
    const script = new Script(Module.wrap(readFileSync(file, 'utf8')), { filename: file, cachedData: readFileSync(`${file}.cache`) });
    assert.equal(script.cachedDataRejected, false, `${name}: the cache is accepted`);
  }
});

test('the per-command bundles register what the development entry loads for each command', async () => {
  const words = Object.keys(commands).filter((k) => !k.includes(' '));
  assert.deepEqual(Object.keys(COMMANDS).sort(), words.sort());
  for (const [name, mods] of Object.entries(commands)) {
    const want = await Promise.all(mods.map(async ([file, fn]) => (await import(`../../src/cli/${file}`))[fn]));
    const command = name.split(' ')[0];
    const loaded = await COMMANDS[command]();
    // a command's bundle registers what the development entry loads; a mesh's, a part of it
    if (name === command) assert.deepEqual(loaded, want, name);
    else assert.ok(want.every((f) => loaded.includes(f)), name);
  }
});

test('each command answers --help through the published entry', async () => {
  for (const name of Object.keys(commands)) {
    const r = await run(process.execPath, [distEntry(), ...name.split(' '), '--help']);
    assert.equal(r.code, 0, `${name}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`^Usage: podtables ${name} `), name);
  }
  const all = await run(process.execPath, [distEntry(), '--help']);
  for (const name of Object.keys(commands).filter((k) => !k.includes(' '))) assert.match(all.stdout, new RegExp(`^  ${name}\\b`, 'm'), `--help lists ${name}`);
  const bad = await run(process.execPath, [distEntry(), 'nosuch']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown command 'nosuch'/);
});

test('the published entry prints what the development entry prints (demo, convert from stdin)', async () => {
  const dev = await podtables(['demo']);
  const pub = await run(process.execPath, [distEntry(), 'demo']);
  assert.equal(pub.code, 0, pub.stderr);
  assert.equal(pub.stdout, dev.stdout);
  const input = '*nat\n:PREROUTING ACCEPT [0:0]\n-A PREROUTING -p tcp --dport 80 -j REDIRECT --to-ports 4143\nCOMMIT\n';
  const conv = await run(process.execPath, [distEntry(), 'convert', '--to', 'save', '-'], { input });
  assert.equal(conv.code, 0, conv.stderr);
  assert.match(conv.stdout, /^-A PREROUTING -p tcp -m tcp --dport 80 -j REDIRECT --to-ports 4143$/m);
});

test('a reader that stops early ends the command quietly, whether it writes through the stream or with write(2)', async () => {
  const { spawn } = await import('node:child_process');
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  // an empty PATH: init --simulate finds no iptables and prints the plan for an empty table
  const empty = mkdtempSync(join(tmpdir(), 'pt-nopath-'));
  try {
    for (const args of [['demo'], ['init', 'linkerd', '-p', '4143', '-o', '4140', '-u', '2102', '--simulate', '--log-level', 'debug']]) {
      const child = spawn(process.execPath, [distEntry(), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: empty } });
      let err = '';
      child.stderr.on('data', (d) => (err += d));
      // read one chunk, then go away, as `| head -1` does
      const closed = new Promise((r) => child.once('close', r));
      await Promise.race([new Promise((r) => child.stdout.once('data', r)), closed]);
      child.stdout.destroy();
      const code = await closed;
      assert.equal(code, 0, `${args[0]}: ${err}`);
      assert.doesNotMatch(err, /EPIPE|internal error/, args[0]);
    }
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
