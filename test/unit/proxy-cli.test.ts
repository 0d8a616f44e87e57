/**
 * `podtables proxy` refuses bad flag values before it binds anything: exit code 2 and a message
 * naming the value.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podtables } from '../support/cli';

test('proxy: a bad --inbound-source or port exits 2 naming the value, before listening', async () => {
  for (const [args, message] of [
    [['--inbound', '15006', '--inbound-source', '127.0.0.300'], /--inbound-source: invalid address "127\.0\.0\.300"/],
    [['--inbound', '15006', '--inbound-source', '127.0.0.6,127.0.0.7'], /--inbound-source: two IPv4 addresses \("127\.0\.0\.6" and "127\.0\.0\.7"\)/],
    [['--inbound', '15006', '--inbound-source', '::6,fe80::1%eth0'], /--inbound-source: invalid address "fe80::1%eth0"/],
    [['--inbound', '70000'], /--inbound: invalid port "70000"/],
  ] as const) {
    const r = await podtables(['proxy', ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.doesNotMatch(r.stderr + r.stdout, /listening/);
  }
});
