// The client's protocol against a local fake edge: patches (applied on a matching
// previous_version, refetch on a gap), malformed snapshots and patches rejected whole,
// Last-Event-ID on reconnect, ETag/304 and gzip, polling, 401, backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createClient } from '../src/index.mjs';
import { startFake, snapshotDoc, flag, event, until, recordingLogger } from './helpers/fake.mjs';

function base() {
  return { a: flag('a'), b: flag('b', { serve: 'off' }) };
}

/** A fake edge serving `base()` at `version` and a client connected to it (both closed after t). */
async function connected(t, { version = 1, ...options } = {}) {
  const fake = await startFake();
  t.after(() => fake.close());
  fake.state.doc = snapshotDoc(version, base());
  const log = recordingLogger();
  const client = createClient({ url: fake.url, sdkKey: 'good-key', logger: log, ...options });
  t.after(() => client.close());
  const changes = [];
  const errors = [];
  client.on('change', (keys) => changes.push(keys));
  client.on('error', (e) => errors.push(e));
  assert.equal(await client.waitForReady(2000), true);
  if (options.stream !== false) await until(() => fake.state.streams.size === 1, 2000, 'the stream');
  return { fake, client, log, changes, errors };
}

test('a patch that follows the held version is applied in place; a gap refetches the snapshot', async (t) => {
  const { fake, client, changes } = await connected(t);
  await until(() => fake.state.snapshotRequests.length >= 2, 2000, 'the version event refetch');
  const fetchesBefore = fake.state.snapshotRequests.length;

  // v1 -> v2: b turns on. Applied from the patch alone (no snapshot request).
  fake.state.doc = snapshotDoc(2, { ...base(), b: flag('b') });
  fake.send(event('patch', 2, { environment: 'production', version: 2, previous_version: 1, flags: { b: flag('b') }, segments: {} }));
  await until(() => client.version === 2, 2000, 'patch v2');
  assert.equal(client.isEnabled('b'), true);
  assert.deepEqual(changes.at(-1), ['b']);
  assert.equal(fake.state.snapshotRequests.length, fetchesBefore);

  // A patch 3 -> 4 while holding 2: a gap, so the whole snapshot (v4) is fetched instead.
  fake.state.doc = snapshotDoc(4, { ...base(), b: flag('b'), c: flag('c') });
  fake.send(event('patch', 4, { environment: 'production', version: 4, previous_version: 3, flags: { c: flag('c') }, segments: {} }));
  await until(() => client.version === 4, 2000, 'refetched v4');
  assert.equal(fake.state.snapshotRequests.length, fetchesBefore + 1);
  assert.equal(client.isEnabled('c'), true);
  assert.deepEqual(changes.at(-1), ['c']);

  // A removal (null) in a patch.
  fake.state.doc = snapshotDoc(5, { ...base(), b: flag('b') });
  fake.send(event('patch', 5, { environment: 'production', version: 5, previous_version: 4, flags: { c: null }, segments: {} }));
  await until(() => client.version === 5, 2000, 'patch v5');
  assert.equal(client.evaluate('c', {}, false).errorCode, 'FLAG_NOT_FOUND');
  await client.close();
});

test('a snapshot answer overtaken by a patch is dropped: a kill is never undone by a slow response', async (t) => {
  const { fake, client } = await connected(t);
  await until(() => fake.state.snapshotRequests.length >= 2, 2000, 'the version event refetch');
  // The server still serves version 1 (another revision, so not a 304), slowly.
  fake.state.doc = { ...snapshotDoc(1, base()), revision: 'r1-slow' };
  fake.state.delayMs = 300;
  const asked = fake.state.snapshotRequests.length;
  fake.send(event('version', 1, { environment: 'production', version: 1 }));
  await until(() => fake.state.snapshotRequests.length > asked, 2000, 'the slow refetch');
  const killed = flag('a', { kill: { by: 'oncall', at: '2026-01-01T00:00:00Z', reason: 'x' } });
  fake.send(event('patch', 2, { environment: 'production', version: 2, previous_version: 1, flags: { a: killed }, segments: {} }));
  await until(() => client.version === 2, 2000, 'the kill patch');
  await new Promise((resolve) => setTimeout(resolve, 500)); // the slow answer has arrived
  assert.equal(client.version, 2);
  assert.equal(client.isEnabled('a'), false);
});

test('a malformed patch is rejected whole: the last good version stays, then the snapshot is refetched', async (t) => {
  const { fake, client, log, errors } = await connected(t);
  const fetches = fake.state.snapshotRequests.length;
  // Two flags change; one is malformed (unknown operator): neither may be applied.
  const broken = flag('a', { rules: [{ conditions: [{ attribute: 'x', operator: 'resembles', value: 1 }], serve: { variant: 'on' } }] });
  fake.send(event('patch', 2, { environment: 'production', version: 2, previous_version: 1, flags: { a: broken, b: flag('b') }, segments: {} }));
  await until(() => errors.length === 1, 2000, 'the rejection');
  assert.equal(client.version, 1);
  assert.equal(client.isEnabled('b'), false, 'the good half of the patch is not applied either');
  assert.match(log.lines.error.join('\n'), /patch rejected whole, keeping version 1: flags\.a\.rules\[0\]\.conditions\[0\]: unknown operator "resembles"/);
  await until(() => fake.state.snapshotRequests.length > fetches, 2000, 'the refetch');
  // Not JSON at all.
  fake.send(event('patch', 2, '{"version": 2, '));
  await until(() => errors.length === 2, 2000, 'the second rejection');
  assert.equal(client.version, 1);
  await client.close();
});

test('a malformed snapshot is rejected whole and the last good one keeps serving', async (t) => {
  const { fake, client, errors } = await connected(t, { stream: false, pollIntervalMs: 50 });
  for (const [raw, why] of [
    ['{"schema_version": 1, "environment": "production", "version": 2, "flags": {', /JSON/],
    [JSON.stringify(snapshotDoc(2, { a: { ...flag('a'), off_variant: 'nope' } })), /flags\.a\.off_variant: unknown variant "nope"/],
    [JSON.stringify({ ...snapshotDoc(2, base()), schema_version: 2 }), /schema_version: 2 is not 1/],
    [JSON.stringify(snapshotDoc(2, { a: { ...flag('a'), default_serve: { split: [{ variant: 'on', weight: 0 }] } } })), /weights must total/],
  ]) {
    fake.state.rawBody = raw;
    fake.state.doc = { ...snapshotDoc(2, base()) }; // new ETag, so the poll takes the body
    const before = errors.length;
    await until(() => errors.length > before, 2000, `rejection of ${why}`);
    assert.match(errors.at(-1).message, why);
    assert.equal(client.version, 1);
    assert.equal(client.isEnabled('a'), true);
    fake.state.doc = snapshotDoc(1, base());
  }
  await client.close();
});

test('reconnecting streams resume from the held version with Last-Event-ID', async (t) => {
  const { fake, client } = await connected(t, { version: 7 });
  assert.equal(fake.state.streamRequests[0].headers['last-event-id'], undefined);
  fake.endStreams(); // the server ends it (retry: 100 ms)
  await until(() => fake.state.streamRequests.length === 2, 3000, 'the reconnect');
  assert.equal(fake.state.streamRequests[1].headers['last-event-id'], '7');
  await client.close();
});

test('polling without a stream: gzip bodies, If-None-Match and 304s', async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  fake.state.doc = snapshotDoc(3, base());
  const client = createClient({ url: fake.url, sdkKey: 'good-key', stream: false, pollIntervalMs: 30, logger: null });
  t.after(() => client.close());
  assert.equal(await client.waitForReady(2000), true);
  await until(() => fake.state.snapshotRequests.length >= 4, 2000, 'polls');
  const [first, second] = fake.state.snapshotRequests;
  assert.match(first.headers['accept-encoding'], /gzip/);
  assert.equal(first.headers['if-none-match'], undefined);
  assert.equal(second.headers['if-none-match'], '"production:3-r3:gzip"');
  fake.state.doc = snapshotDoc(4, { ...base(), b: flag('b') });
  await until(() => client.version === 4, 2000, 'a poll picking up v4');
  assert.equal(client.isEnabled('b'), true);
  assert.equal(fake.state.streamRequests.length, 0);
  await client.close();
});

test('401: one clear error, no more requests, defaults served, waitForReady false', async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  fake.state.doc = snapshotDoc(1, base());
  const log = recordingLogger();
  const client = createClient({ url: fake.url, sdkKey: 'revoked-key', pollIntervalMs: 20, retryInitialMs: 10, logger: log, defaults: { a: true } });
  t.after(() => client.close());
  const started = Date.now();
  assert.equal(await client.waitForReady(5000), false);
  assert.ok(Date.now() - started < 2000, 'resolves as soon as the key is refused');
  await new Promise((resolve) => setTimeout(resolve, 100)); // requests already on the wire
  const refused = fake.state.refused;
  assert.ok(refused >= 1 && refused <= 2, `the snapshot and stream requests: ${refused}`);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.equal(fake.state.refused, refused, 'no request after the refusal');
  assert.equal(log.lines.error.length, 1);
  assert.match(log.lines.error[0], /refused the SDK key \(HTTP 401.*unknown or revoked.*Stopped updating/);
  assert.equal(client.isEnabled('a'), true);
  assert.equal(client.evaluate('a').errorCode, 'PROVIDER_NOT_READY');
  await client.close();
});

test('server errors back off exponentially with jitter and recover', async (t) => {
  const fake = await startFake();
  t.after(() => fake.close());
  fake.state.doc = snapshotDoc(1, base());
  fake.state.status = 500;
  const client = createClient({ url: fake.url, sdkKey: 'good-key', stream: false, pollIntervalMs: 1000, retryInitialMs: 40, retryMaxMs: 1000, logger: null });
  t.after(() => client.close());
  // The jittered delays stay within [ceiling / 2, ceiling] and the ceiling doubles.
  for (let n = 1; n <= 8; n++) {
    const ceiling = Math.min(1000, 40 * 2 ** (n - 1));
    for (let i = 0; i < 50; i++) {
      const d = client._backoff(n);
      assert.ok(d >= ceiling / 2 && d <= ceiling, `failure ${n}: ${d}`);
    }
  }
  await until(() => fake.state.snapshotRequests.length >= 3, 3000, 'retries');
  assert.equal(client.ready, false);
  fake.state.status = 200;
  assert.equal(await client.waitForReady(5000), true);
  await client.close();
});
