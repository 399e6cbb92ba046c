// The shared cross-language vectors (sdk_clients/testdata/evaluation-cases.json): every case,
// hash vector and ramp, against the JavaScript engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Engine } = require('../src/engine.cjs');
const { murmur3, murmur3After, prefixState } = require('../src/murmur.cjs');

const vectors = JSON.parse(
  readFileSync(new URL('../../testdata/evaluation-cases.json', import.meta.url), 'utf8'),
);

test('the vectors file holds every case it announces', () => {
  const count = vectors.suites.reduce((n, suite) => n + suite.cases.length, 0);
  assert.equal(count, vectors.case_count);
  assert.ok(count > 150);
});

for (const suite of vectors.suites) {
  test(`suite ${suite.name}`, async (t) => {
    const engine = new Engine(suite.flags, suite.segments || {});
    for (const c of suite.cases) {
      await t.test(c.name, () => {
        const got = engine.evaluate(c.flag, c.context, 'default' in c ? c.default : null);
        assert.deepEqual(
          { value: got.value, variant: got.variant, reason: got.reason, error_code: got.errorCode },
          c.expected,
        );
      });
    }
  });
}

test('hash vectors: MurmurHash3 x86_32 of the UTF-8 bytes and every bucket', () => {
  assert.ok(vectors.hash_vectors.length > 10);
  for (const v of vectors.hash_vectors) {
    const h = murmur3(v.flag_key + v.unit);
    assert.equal(h, v.hash, `${v.flag_key} + ${v.unit}`);
    assert.equal(Buffer.byteLength(v.flag_key + v.unit, 'utf8'), v.utf8_bytes);
    for (const [total, bucket] of Object.entries(v.buckets)) {
      assert.equal(Math.floor((h * Number(total)) / 2 ** 32), bucket, `${v.unit} W=${total}`);
    }
  }
});

test('hash vectors with the flag key hashed ahead (as a compiled split does)', () => {
  for (const v of vectors.hash_vectors) {
    assert.equal(murmur3After(prefixState(v.flag_key), v.unit), v.hash, `${v.flag_key} + ${v.unit}`);
  }
});

test('ramp: the same units at each percentage, each set containing the previous', () => {
  const { flag_key: key, units, percentages, on_units: onUnits } = vectors.ramp;
  let previous = new Set();
  for (const p of percentages) {
    const engine = new Engine({
      [key]: {
        key, type: 'boolean', variants: { on: true, off: false }, off_variant: 'off',
        enabled: true, kill: null, targets: [], rules: [], prerequisites: [],
        default_serve: { split: [{ variant: 'on', weight: p * 100 }, { variant: 'off', weight: 10000 - p * 100 }] },
      },
    }, {});
    const on = units.flatMap((unit, i) => (engine.evaluate(key, { targetingKey: unit }).value ? [i] : []));
    assert.deepEqual(on, onUnits[String(p)], `${p}%`);
    for (const i of previous) assert.ok(on.includes(i));
    previous = new Set(on);
  }
});
