/**
 * applyFreshFamilies with stand-ins for iptables-restore and iptables-save (no kernel): each
 * family's restore gets exactly its own rules, only a committed family carries its save, a refused
 * one is tried without a result, and binaries are passed as given (a path with a space included).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyFreshFamilies, planFresh, type ApplyTarget } from '../../src/kernel/apply';
import { linkerdPlan, validateLinkerdFlags } from '../../src/mesh/linkerd';

/** A stand-in binary: a shell script. */
function script(path: string, body: string): string {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}

function withDir(fn: (dir: string) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'pt fresh '));
  try {
    fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The chart's defaults, validated. */
const options = () => {
  const v = validateLinkerdFlags({ incomingProxyPort: '4143', outgoingProxyPort: '4140', proxyUid: '2102', inboundPortsToIgnore: ['4190,4191,4567,4568'], outboundPortsToIgnore: ['4567,4568'] });
  assert.ok(v.options, JSON.stringify(v.issues));
  return v.options!;
};

test('each family gets its own rules; a committed one carries its save, a refused one is tried with no result', () => {
  withDir((dir) => {
    const o = options();
    const plans = [linkerdPlan(o, 'ipv4'), linkerdPlan(o, 'ipv6')];
    // v4's restore commits; v6's refuses (as the kernel does when a chain of ours exists)
    const targets: ApplyTarget[] = [
      { family: 'ipv4', wait: 5, bins: { variant: 'custom', restore: script(join(dir, 'restore 4'), `cat > "${dir}/in4"; echo "$*" > "${dir}/args4"`), save: script(join(dir, 'save4'), 'echo "*nat"; echo COMMIT') } },
      { family: 'ipv6', wait: 5, bins: { variant: 'custom', restore: script(join(dir, 'restore6'), `cat > "${dir}/in6"; echo 'iptables-restore: line 2 failed: Chain already exists' >&2; exit 1`), save: script(join(dir, 'save6'), 'echo never') } },
    ];
    const r = applyFreshFamilies(targets, plans);
    assert.equal(readFileSync(join(dir, 'in4'), 'utf8'), planFresh(plans[0], 'ipv4')!.text);
    assert.equal(readFileSync(join(dir, 'in6'), 'utf8'), planFresh(plans[1], 'ipv6')!.text);
    assert.equal(readFileSync(join(dir, 'args4'), 'utf8'), '--noflush -w 5\n');
    assert.deepEqual(r[0], { tried: true, result: { changed: true, actions: planFresh(plans[0], 'ipv4')!.actions, text: planFresh(plans[0], 'ipv4')!.text, after: '*nat\nCOMMIT\n' } });
    assert.deepEqual(r[1], { tried: true });
  });
});

test('a save that fails after a commit leaves the result without the table; binaries that do not exist leave nothing tried in vain', () => {
  withDir((dir) => {
    const o = options();
    const plan = linkerdPlan(o, 'ipv4');
    const commit = { family: 'ipv4' as const, bins: { variant: 'custom' as const, restore: script(join(dir, 'restore'), 'cat >/dev/null'), save: script(join(dir, 'save'), 'echo partial; exit 2') } };
    const [done] = applyFreshFamilies([commit], [plan]);
    assert.equal(done.tried, true);
    assert.equal(done.result?.changed, true);
    assert.equal(done.result?.after, undefined);
    const [missing] = applyFreshFamilies([{ family: 'ipv4', bins: { variant: 'custom', restore: join(dir, 'nonexistent-restore'), save: join(dir, 'save') } }], [plan]);
    assert.deepEqual(missing, { tried: true });
  });
});

test('targets in different namespaces or with different waits are not tried together', () => {
  const plan = linkerdPlan(options(), 'ipv4');
  const bins = { variant: 'custom' as const, restore: '/nonexistent/r', save: '/nonexistent/s' };
  assert.deepEqual(applyFreshFamilies([{ family: 'ipv4', bins, netns: 'a' }, { family: 'ipv6', bins, netns: 'b' }], [plan, plan]), [{ tried: false }, { tried: false }]);
  assert.deepEqual(applyFreshFamilies([{ family: 'ipv4', bins, wait: 1 }, { family: 'ipv6', bins }], [plan, plan]), [{ tried: false }, { tried: false }]);
});
