// Engine details beyond the shared vectors: RE2 patterns on the linear-time engine, bucketing
// units, dates, attribute lookup, shared results, malformed definitions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { Engine, SnapshotError, linearRegExp } = require('../src/index.cjs');
const { compilePattern, translate } = require('../src/regex.cjs');
const { unitString, parseDatetime, parseSemver, compareSemver } = require('../src/engine.cjs');

const flag = (key, extra = {}) => ({
  key, type: 'boolean', variants: { on: true, off: false }, off_variant: 'off', enabled: true, kill: null,
  targets: [], rules: [], default_serve: { variant: 'off' }, prerequisites: [], ...extra,
});
const rule = (attribute, operator, value) => ({ conditions: [{ attribute, operator, value }], serve: { variant: 'on' } });

test('matches runs on V8\'s linear-time engine: a catastrophic pattern stays fast', () => {
  assert.equal(linearRegExp, true);
  const m = compilePattern('(a|aa)+$');
  const started = performance.now();
  assert.equal(m('a'.repeat(4000) + '!'), false);
  assert.ok(performance.now() - started < 200);
});

test('RE2 syntax is translated: (?i), (?s), \\A \\z, POSIX classes, \\Q..\\E, named groups, \\x{..}', () => {
  const cases = [
    ['(?i)^ADMIN-[a-c]+$', 'admin-CAB', true],
    ['(?i)^ADMIN', 'xadmin', false],
    ['(?s)a.c', 'a\nc', true],
    ['a.c', 'a\nc', false],
    ['\\Aabc\\z', 'abc', true],
    ['\\Aabc\\z', 'abc\n', false],
    ['^[[:digit:]]{3}$', '123', true],
    ['^[[:alpha:]_]+$', 'ab_c', true],
    ['\\Qa.b\\E', 'a.b', true],
    ['\\Qa.b\\E', 'axb', false],
    ['(?P<word>ab)+', 'xabab', true],
    ['\\x{41}', 'A', true],
    ['\\s', '\u00a0', false], // RE2's \s is ASCII whitespace only
    ['\\d', '\u0661', false],
    ['x{2}', 'xx', true],
    ['a{,2}', 'a{,2}', true], // RE2 reads a brace that starts no repetition literally
  ];
  for (const [pattern, text, expected] of cases) {
    assert.equal(compilePattern(pattern)(text), expected, `${pattern} on ${JSON.stringify(text)}: ${JSON.stringify(translate(pattern))}`);
  }
});

test('patterns RE2 refuses never match (as on the server): lookarounds, backreferences, x{1001}', () => {
  for (const pattern of ['(?=a)a', '(a)\\1', 'x{1001}', '(?<!a)b', '\\pL', '[[:nope:]]', 'a(?i)b']) {
    assert.equal(compilePattern(pattern)('aab xb'), false, pattern);
  }
  const engine = new Engine({ f: flag('f', { rules: [rule('v', 'matches', '(?=x)x')] }) }, {});
  assert.equal(engine.evaluate('f', { v: 'x' }).reason, 'DEFAULT');
});

test('an attribute longer than 4,096 characters never matches', () => {
  const m = compilePattern('a');
  assert.equal(m('a'.repeat(4096)), true);
  assert.equal(m('a'.repeat(4097)), false);
  assert.equal(m('\u{1F600}'.repeat(2048) + 'a'), true, 'code points, not UTF-16 units');
});

test('bucketing units are stringified as the server does', () => {
  assert.equal(unitString('u'), 'u');
  assert.equal(unitString(''), null);
  assert.equal(unitString(true), 'true');
  assert.equal(unitString(42), '42');
  assert.equal(unitString(42.0), '42');
  assert.equal(unitString(-0), '0');
  assert.equal(unitString(1.5), '1.5');
  assert.equal(unitString(1e-7), '1e-07');
  assert.equal(unitString(0.0001), '0.0001');
  assert.equal(unitString(1e22), '10000000000000000000000');
  assert.equal(unitString(NaN), null);
  assert.equal(unitString(null), null);
  assert.equal(unitString({}), null);
});

test('semver and dates', () => {
  assert.equal(compareSemver(parseSemver('10.0.0'), parseSemver('9.99.99')), 1);
  assert.equal(compareSemver(parseSemver('1.0.0-alpha'), parseSemver('1.0.0-alpha.1')), -1);
  assert.equal(compareSemver(parseSemver('1.0.0-1'), parseSemver('1.0.0-alpha')), -1);
  assert.equal(compareSemver(parseSemver('123456789012345678901.0.0'), parseSemver('123456789012345678900.0.0')), 1);
  assert.equal(parseSemver('01.0.0'), null);
  assert.deepEqual(parseDatetime('2026-01-01T00:00:00Z'), [1767225600, 0]);
  assert.deepEqual(parseDatetime('2026-01-01'), [1767225600, 0]);
  assert.deepEqual(parseDatetime('2026-01-01T02:00:00.1234567+02:00'), [1767225600, 123456]);
  assert.equal(parseDatetime('2026-02-29T00:00:00Z'), null);
  assert.notEqual(parseDatetime('2024-02-29T00:00:00Z'), null);
  assert.equal(parseDatetime('2026-01-01T24:00:00Z'), null);
  assert.equal(parseDatetime('0000-01-01'), null);
  const engine = new Engine({ f: flag('f', { rules: [rule('at', 'before', '2026-01-01T00:00:00Z')] }) }, {});
  assert.equal(engine.evaluate('f', { at: new Date('2025-12-31T23:59:59.999Z') }).value, true, 'a Date attribute');
  assert.equal(engine.evaluate('f', { at: new Date('2026-01-01T00:00:00.000Z') }).value, false);
});

test('attributes: dotted names, null as missing, no prototype properties', () => {
  const engine = new Engine({
    a: flag('a', { rules: [rule('device.os', 'equals', 'ios')] }),
    b: flag('b', { rules: [rule('constructor', 'not_equals', 'x')] }),
    c: flag('c', { rules: [rule('country', 'not_equals', 'DE')] }),
  }, {});
  assert.equal(engine.evaluate('a', { device: { os: 'ios' } }).value, true);
  assert.equal(engine.evaluate('a', { 'device.os': 'ios' }).value, true);
  assert.equal(engine.evaluate('a', { device: ['ios'] }).value, false);
  assert.equal(engine.evaluate('b', {}).value, false, 'Object.prototype.constructor is not an attribute');
  assert.equal(engine.evaluate('b', { constructor: 'y' }).value, true);
  assert.equal(engine.evaluate('c', { country: null }).value, false, 'null is missing: the condition is false');
  assert.equal(engine.evaluate('c', null).reason, 'DEFAULT');
  assert.equal(engine.evaluate('c', undefined).reason, 'DEFAULT');
});

test('results are built once per flag and shared: evaluation allocates nothing it returns anew', () => {
  const engine = new Engine({
    r: flag('r', { default_serve: { split: [{ variant: 'on', weight: 1 }, { variant: 'off', weight: 1 }] } }),
  }, {});
  const first = engine.evaluate('r', { targetingKey: 'user-1' });
  assert.equal(engine.evaluate('r', { targetingKey: 'user-1' }), first);
  assert.ok(Object.isFrozen(first));
  const values = new Set();
  for (let i = 0; i < 100; i++) values.add(engine.evaluate('r', { targetingKey: `u${i}` }));
  assert.equal(values.size, 2);
});

test('json variant values are frozen: a caller cannot change what others are served', () => {
  const engine = new Engine({
    j: { ...flag('j'), type: 'json', variants: { a: { list: [1] }, b: {} }, off_variant: 'b', default_serve: { variant: 'a' } },
  }, {});
  const value = engine.evaluate('j', {}).value;
  assert.throws(() => { 'use strict'; value.list.push(2); }, TypeError);
});

test('malformed definitions throw SnapshotError naming the place', () => {
  const bad = [
    [{ f: flag('f', { rules: [rule('x', 'gt', 'ten')] }) }, /flags\.f\.rules\[0\]\.conditions\[0\]: needs a finite number/],
    [{ f: flag('f', { rules: [rule('x', 'in', 'DE')] }) }, /needs a list/],
    [{ f: flag('f', { rules: [rule('x', 'semver_gt', 'latest')] }) }, /not a semantic version/],
    [{ f: flag('f', { default_serve: { variant: 'maybe' } }) }, /default_serve\.variant: unknown variant "maybe"/],
    [{ f: flag('f', { default_serve: { split: [{ variant: 'on', weight: 1.5 }] } }) }, /weight: must be an integer/],
    [{ f: flag('g') }, /flags\.f\.key: says "g"/],
    [{ f: { ...flag('f'), type: 'date' } }, /unknown type "date"/],
    [{ f: { ...flag('f'), targets: [{ variant: 'on', values: [1] }] } }, /targets\[0\]\.values: must be strings/],
  ];
  for (const [flags, message] of bad) {
    assert.throws(() => new Engine(flags, {}), (error) => error instanceof SnapshotError && message.test(error.message));
  }
});

test('prerequisites: depth bound, missing prerequisite, chains', () => {
  const flags = {};
  for (let i = 0; i < 20; i++) {
    flags[`p${i}`] = flag(`p${i}`, { default_serve: { variant: 'on' }, prerequisites: i ? [{ flag: `p${i - 1}`, variant: 'on' }] : [] });
  }
  flags.orphan = flag('orphan', { default_serve: { variant: 'on' }, prerequisites: [{ flag: 'gone', variant: 'on' }] });
  const engine = new Engine(flags, {});
  assert.equal(engine.evaluate('p16', {}).value, true);
  assert.equal(engine.evaluate('p17', {}).reason, 'PREREQUISITE_FAILED');
  assert.equal(engine.evaluate('orphan', {}).reason, 'PREREQUISITE_FAILED');
});

test('the allocation-free attribute scanners agree with the reference parsers on 50,000 strings', () => {
  const { compareSemverText, scanDatetime, moment, INVALID } = require('../src/scan.cjs');
  let seed = 7;
  const random = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const semverParts = ['v', '0', '1', '2', '10', '01', '.', '.', '-', '+', 'alpha', 'beta', '1', 'rc', 'x-y', '00', '', '99999999999999999999', 'é'];
  const dateParts = ['2026', '2024', '0000', '-', '-', '01', '02', '29', '12', '13', '31', 'T', ' ', ':', '00', '23', '24', '59', '60', '.', '1', '123456789', '1234567890', 'Z', '+02:00', '-23:59', '+24:00', 'z'];
  const targets = ['1.0.0', '2.0.0-beta.2', '1.2.3-rc.1.x', '0.0.1', '1.0.0-1'].map((t) => {
    const parsed = parseSemver(t);
    return { text: t, parsed, compiled: { core: parsed.core, pre: parsed.pre && parsed.pre.map((id) => ({ numeric: /^[0-9]+$/.test(id), text: id })) } };
  });
  let validVersions = 0;
  let validDates = 0;
  for (let k = 0; k < 25000; k++) {
    const sv = Array.from({ length: 1 + Math.floor(random() * 7) }, () => pick(semverParts)).join('');
    if (parseSemver(sv) !== null) validVersions++;
    for (const target of targets) {
      const parsed = parseSemver(sv);
      const expected = parsed === null ? INVALID : compareSemver(parsed, target.parsed);
      assert.equal(compareSemverText(sv, target.compiled), expected, `${sv} vs ${target.text}`);
    }
    const dt = k % 2
      ? Array.from({ length: 1 + Math.floor(random() * 12) }, () => pick(dateParts)).join('')
      : `${pick(['2026', '2024', '1999'])}-${pick(['01', '02', '12'])}-${pick(['01', '29', '31'])}${pick(['', 'T', ' '])}${pick(['', '00:00', '23:59'])}${pick(['', ':00', ':59'])}${pick(['', '.5', '.123456789'])}${pick(['', 'Z', '+02:00', '-01:30'])}`;
    const reference = parseDatetime(dt);
    const ok = scanDatetime(dt);
    assert.equal(ok, reference !== null, dt);
    if (ok) assert.deepEqual([moment.seconds, moment.micros], reference, dt);
    if (ok) validDates++;
  }
  // Both sides of each question are exercised.
  assert.ok(validVersions > 2000 && validVersions < 23000, `valid versions: ${validVersions}`);
  assert.ok(validDates > 2000 && validDates < 20000, `valid dates: ${validDates}`);
});
