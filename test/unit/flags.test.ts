/** The quick flag reader gives the options commander gives, or leaves the line to commander. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Command } from 'commander';
import { addFlags, quickFlags } from '../../src/cli/flags';
import { INIT_LINKERD_FLAGS, quickInitLinkerd } from '../../src/cli/init';

/** The options commander hands the action for `args`, or the error it raises. */
function commanderOpts(args: string[]): Record<string, unknown> | Error {
  let got: Record<string, unknown> | undefined;
  const c = addFlags(new Command('linkerd'), INIT_LINKERD_FLAGS)
    .exitOverride()
    .configureOutput({ writeErr: () => {}, writeOut: () => {} })
    .action((o) => {
      got = { ...o };
    });
  try {
    c.parse(args, { from: 'user' });
  } catch (e) {
    return e as Error;
  }
  return got!;
}

const value = fc.oneof(fc.constantFrom('4143', '4190,4191', '10.0.0.0/8', 'false', 'true', 'json', 'legacy', '', '-1', '--netns', '-p', 'x=y'), fc.stringMatching(/^[a-z0-9.,:/=-]{0,8}$/));
const word = fc.oneof(
  fc.constantFrom(...INIT_LINKERD_FLAGS.flatMap((f) => f.flags.split(/[ ,]+/).filter((w) => w.startsWith('-')))),
  fc.tuple(fc.constantFrom(...INIT_LINKERD_FLAGS.map((f) => /--[\w-]+/.exec(f.flags)![0])), value).map(([f, v]) => `${f}=${v}`),
  value,
  fc.constantFrom('--help', '-h', '--', '-wp', '--simul', '--no-ipv6', 'extra'),
);

test('on any command line, the quick reader gives what commander gives, or leaves the line to commander', () => {
  let taken = 0;
  fc.assert(
    fc.property(fc.array(word, { maxLength: 10 }), (args) => {
      const quick = quickFlags(args, INIT_LINKERD_FLAGS);
      if (quick === undefined) return;
      taken++;
      assert.deepEqual(quick, commanderOpts(args), args.join(' '));
    }),
    { numRuns: 3000 },
  );
  assert.ok(taken > 300, `the quick reader took ${taken} of 3000 lines`);
});

test("the chart's command line is read quickly; help, unknown flags and odd spellings go to commander", () => {
  const chart = ['--incoming-proxy-port', '4143', '--outgoing-proxy-port', '4140', '--proxy-uid', '2102', '--inbound-ports-to-ignore', '4190,4191,4567,4568', '--outbound-ports-to-ignore', '4567,4568'];
  const o = quickFlags(chart, INIT_LINKERD_FLAGS);
  assert.deepEqual(o, commanderOpts(chart));
  assert.equal(o?.incomingProxyPort, '4143');
  assert.deepEqual(o?.inboundPortsToIgnore, ['4190,4191,4567,4568']);
  assert.equal(o?.ipv6, true);
  assert.deepEqual(quickFlags(['-r', '80', '-r', '443', '--ipv6=false', '-w'], INIT_LINKERD_FLAGS), commanderOpts(['-r', '80', '-r', '443', '--ipv6=false', '-w']));
  for (const odd of [['--help'], ['-h'], ['--bogus'], ['--simul'], ['-p4143'], ['-p'], ['--ipv6'], ['--netns', '--simulate'], ['extra'], ['--', '-p', '1'], ['--simulate=yes']])
    assert.equal(quickFlags(odd, INIT_LINKERD_FLAGS), undefined, odd.join(' '));
  assert.ok(quickInitLinkerd(['node', 'podtables', 'init', 'linkerd', ...chart]));
  assert.equal(quickInitLinkerd(['node', 'podtables', 'init', 'istio', ...chart]), undefined);
  assert.equal(quickInitLinkerd(['node', 'podtables', 'init', 'linkerd', '--help']), undefined);
});
