/** Chain names kept as bytes: their save order is the byte order of the names, as iptables lists user chains. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ChainNames, EXT, FW, SEP, SVC, SVL } from '../../src/mesh/kube-proxy/names';
import { hashPut, hashStart, kubeHash } from '../../src/mesh/kube-proxy/hash';

const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

test('sorted chain ids list the names in byte order: hashed names of every kind, literal ones among them, ties included', () => {
  const literalName = fc.oneof(
    fc.constantFrom('KUBE-SERVICES', 'KUBE-NODEPORTS', 'KUBE-MARK-MASQ', 'KUBE-SVC-', 'KUBE-SEP-ZZZZ', 'KUBE-EXT-0', 'KUBE-FW-AAAAAAAAAAAAAAAA', 'A', 'z', 'KUBE-SVL-'),
    fc.stringMatching(/^KUBE-(SVC|SEP|EXT|FW|SVL)-[A-Z2-7]{0,17}$/),
    fc.stringMatching(/^[A-Za-z0-9_-]{1,28}$/),
  );
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.string({ maxLength: 12 }), fc.constantFrom(SVC, SVL, EXT, FW, SEP)), { maxLength: 300 }), fc.array(literalName, { maxLength: 30 }), (hashedInputs, literals) => {
      const names = new ChainNames(4);
      const ids: number[] = [];
      for (const [text, kind] of hashedInputs) {
        hashStart();
        hashPut(text);
        ids.push(names.hashed(kind));
      }
      for (const l of literals) ids.push(names.id(l));
      const unique = [...new Set(ids)];
      const got = Array.from(names.sort(Int32Array.from(unique)), (id) => names.text(id));
      const want = unique.map((id) => names.text(id)).sort(byBytes);
      assert.deepEqual(got, want);
    }),
    { numRuns: 200 },
  );
});

test('a hashed name is kube-proxy\'s: prefix and the first 16 characters of base32(sha256)', () => {
  const names = new ChainNames();
  hashStart();
  hashPut('default/nginxtcp');
  const id = names.hashed(SVC);
  assert.equal(names.text(id), `KUBE-SVC-${kubeHash('default/nginxtcp')}`);
  assert.equal(names.text(id), 'KUBE-SVC-2CMXP7HKUVJN7L6M', "the issue's example: Service default/nginx, unnamed TCP port");
  assert.equal(names.text(names.sibling(id, EXT)), `KUBE-EXT-${kubeHash('default/nginxtcp')}`);
});
