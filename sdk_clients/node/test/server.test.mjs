// The client against a real flagsvc (python -m tests.sdk_server): snapshot, a stream update, a
// kill seen within a second and its restore, flagsvc down at start, flagsvc dying mid-run, a
// refused key, no handle left after close(), the OpenFeature provider.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { createClient } from '../src/index.mjs';
import { FlagsvcProvider } from '../src/openfeature.mjs';
import { startFlagsvc } from './helpers/flagsvc.mjs';
import { until, recordingLogger } from './helpers/fake.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const users = Array.from({ length: 200 }, (_, i) => ({ targetingKey: `user-${i}`, email: i % 7 ? `u${i}@mail.test` : `u${i}@example.com`, country: i % 3 ? 'DE' : 'US', app_version: `4.${i % 5}.0` }));
const FLAGS = ['new-checkout', 'search-ranking', 'eu-cookie-banner-v2', 'mobile.min-version-banner', 'homepage.hero', 'upload.max-size-mb'];

function results(client) {
  return users.map((u) => FLAGS.map((f) => client.evaluate(f, u)));
}

describe('against a real flagsvc', { timeout: 300000 }, () => {
  let svc;
  const open = [];
  const client = (options = {}) => {
    const c = createClient({ url: svc.url, sdkKey: svc.serverKey, logger: null, retryInitialMs: 100, retryMaxMs: 1000, ...options });
    open.push(c);
    return c;
  };

  before(async () => {
    svc = await startFlagsvc();
  }, { timeout: 180000 });

  after(async () => {
    for (const c of open) await c.close();
    await OpenFeature.close();
    if (svc) await svc.stop();
  });

  it('loads the snapshot and evaluates as the server does', async () => {
    const c = client();
    assert.equal(await c.waitForReady(10000), true);
    const served = await svc.snapshot();
    assert.equal(c.version, served.version);
    assert.deepEqual(c.snapshot(), served);
    assert.deepEqual(c.evaluate('new-checkout', { targetingKey: 'qa-alice' }), { value: true, variant: 'on', reason: 'TARGETING_MATCH', errorCode: null, errorMessage: null });
    assert.equal(c.evaluate('new-checkout', { targetingKey: 'user-1' }).reason, 'SPLIT');
    assert.equal(c.getValue('search-ranking', { targetingKey: 'x', email: 'a@example.com' }, 'classic'), 'hybrid');
    assert.equal(c.isEnabled('mobile.min-version-banner', { targetingKey: 'x', app_version: '4.1.9' }), true);
    assert.equal(c.isEnabled('mobile.min-version-banner', { targetingKey: 'x', app_version: '4.2.0' }), false);
    assert.equal(typeof c.getValue('upload.max-size-mb', {}, 1), 'number');
    assert.equal(c.evaluate('no-such-flag', {}, 'd').errorCode, 'FLAG_NOT_FOUND');
  });

  it('hears a change on the stream: a flag disabled and enabled again', async () => {
    const c = client();
    assert.equal(await c.waitForReady(10000), true);
    const changes = [];
    c.on('change', (keys) => changes.push(keys));
    assert.equal(c.isEnabled('recommendations.enabled', {}), true);
    const version = c.version;
    await svc.setEnabled('recommendations.enabled', false);
    await until(() => !c.isEnabled('recommendations.enabled', {}), 3000, 'the disable');
    assert.ok(c.version > version);
    assert.deepEqual(changes.at(-1), ['recommendations.enabled']);
    assert.equal(c.evaluate('recommendations.enabled', {}).reason, 'DISABLED');
    await svc.setEnabled('recommendations.enabled', true);
    await until(() => c.isEnabled('recommendations.enabled', {}), 3000, 'the enable');
  });

  it('sees a kill within a second, and the restore brings back exactly what was served', async () => {
    const c = client();
    assert.equal(await c.waitForReady(10000), true);
    await new Promise((resolve) => setTimeout(resolve, 200)); // the stream is open
    const beforeKill = results(c);
    const started = performance.now();
    const killing = svc.kill('new-checkout', 'checkout 500s');
    await until(() => !c.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), 1000, 'the kill within 1 s');
    const seenAfter = performance.now() - started;
    await killing;
    assert.ok(seenAfter < 1000, `kill seen after ${seenAfter} ms`);
    console.log(`# kill seen by the client ${seenAfter.toFixed(0)} ms after the request was sent`);
    for (const u of users) assert.equal(c.evaluate('new-checkout', u).reason, 'DISABLED');
    await svc.restore('new-checkout', 'fixed');
    await until(() => c.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), 2000, 'the restore');
    assert.deepEqual(results(c), beforeKill);
  });

  it('flagsvc down at start: bootstrap or defaults at once, waitForReady bounded, then the server', async () => {
    const bootstrapFile = path.join(mkdtempSync(path.join(tmpdir(), 'flagsvc-node-')), 'snapshot.json');
    const served = await svc.snapshot();
    writeFileSync(bootstrapFile, JSON.stringify(served));
    await svc.stopWeb();
    try {
      const withBootstrap = client({ bootstrap: bootstrapFile });
      const withDefaults = client({ defaults: { 'new-checkout': true, 'upload.max-size-mb': 5 } });
      const started = Date.now();
      const [a, b] = await Promise.all([withBootstrap.waitForReady(500), withDefaults.waitForReady(500)]);
      const waited = Date.now() - started;
      assert.equal(a, false);
      assert.equal(b, false);
      assert.ok(waited >= 450 && waited < 1500, `waitForReady took ${waited} ms`);
      assert.equal(withBootstrap.source, 'bootstrap');
      assert.equal(withBootstrap.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), true);
      assert.equal(withBootstrap.evaluate('new-checkout', { targetingKey: 'qa-alice' }).reason, 'TARGETING_MATCH');
      assert.equal(withDefaults.source, 'none');
      assert.equal(withDefaults.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), true);
      assert.equal(withDefaults.getValue('upload.max-size-mb', {}), 5);
      assert.equal(withDefaults.evaluate('upload.max-size-mb', {}).errorCode, 'PROVIDER_NOT_READY');
      await svc.startWeb();
      assert.equal(await withDefaults.waitForReady(15000), true);
      assert.equal(await withBootstrap.waitForReady(15000), true);
      assert.equal(withDefaults.source, 'server');
    } finally {
      await svc.startWeb().catch(() => {});
    }
  });

  it('flagsvc dying mid-run: last known values, no exception in 10,000 evaluations, then recovery', async () => {
    const log = recordingLogger();
    const c = client({ logger: log });
    assert.equal(await c.waitForReady(10000), true);
    await new Promise((resolve) => setTimeout(resolve, 200));
    const expected = results(c);
    await svc.stopWeb();
    let exceptions = 0;
    let mismatches = 0;
    let evaluations = 0;
    // Spread over the outage: the stream breaks and reconnects fail while evaluations run.
    for (let round = 0; round < 50; round++) {
      for (let i = 0; i < 200; i++) {
        const u = users[(round * 37 + i) % users.length];
        const f = (round + i) % FLAGS.length;
        try {
          const got = c.evaluate(FLAGS[f], u);
          evaluations += 1;
          if (got !== expected[users.indexOf(u)][f]) mismatches += 1;
          c.isEnabled(FLAGS[f], u);
          c.getValue(FLAGS[f], u, null);
        } catch {
          exceptions += 1;
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(evaluations, 10000);
    assert.equal(exceptions, 0);
    assert.equal(mismatches, 0);
    assert.match(log.lines.warn.join('\n'), /flagsvc unreachable .* serving version \d+ \(server\)/);
    await svc.startWeb();
    // Recovery: the stream reconnects and a kill made now reaches the client.
    await until(() => c._streamLive, 15000, 'the stream reconnecting');
    await svc.kill('new-checkout', 'after the outage');
    await until(() => !c.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), 2000, 'the kill after recovery');
    await svc.restore('new-checkout', 'after the outage');
    await until(() => c.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), 2000, 'the restore after recovery');
    assert.match(log.lines.warn.join('\n'), /reachable again/);
  });

  it('a refused key: one clear error, defaults, waitForReady false at once', async () => {
    const log = recordingLogger();
    const c = client({ sdkKey: 'fsv_server_not-a-real-key', logger: log, defaults: { 'new-checkout': false } });
    const started = Date.now();
    assert.equal(await c.waitForReady(10000), false);
    assert.ok(Date.now() - started < 3000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal(log.lines.error.length, 1);
    assert.match(log.lines.error[0], /HTTP 401/);
    assert.equal(c.isEnabled('new-checkout', { targetingKey: 'qa-alice' }), false);
    // A client key may not read snapshots either.
    const log2 = recordingLogger();
    const d = client({ sdkKey: svc.clientKey, logger: log2 });
    assert.equal(await d.waitForReady(10000), false);
    assert.equal(log2.lines.error.length, 1);
    assert.match(log2.lines.error[0], /HTTP 40[13]/);
  });

  for (const close of ['1', '0']) {
    it(close === '1' ? 'leaves no socket or timer behind after close()' : 'never keeps the process alive, even without close()', async () => {
      const child = spawn(process.execPath, [path.join(here, 'helpers/child.mjs')], {
        env: { ...process.env, FLAGSVC_URL: svc.url, FLAGSVC_KEY: svc.serverKey, CLOSE: close },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const started = Date.now();
      const code = await new Promise((resolve) => child.on('exit', resolve));
      const report = JSON.parse(out);
      assert.equal(code, 0);
      assert.equal(report.ready, true);
      assert.equal(report.value, true);
      assert.ok(report.before.sockets >= 1, 'the stream socket was open');
      assert.ok(!report.before.keepingAlive.includes('TCPSocketWrap'), `sockets are unref'd: ${report.before.keepingAlive}`);
      if (close === '1') {
        assert.equal(report.after.sockets, 0, JSON.stringify(report));
        assert.equal(report.after.timers, 0, JSON.stringify(report));
        assert.ok(!report.after.keepingAlive.some((r) => r === 'TCPSocketWrap' || r === 'Timeout'), String(report.after.keepingAlive));
      }
      assert.ok(Date.now() - started < 15000);
    });
  }

  it('the OpenFeature provider: details, reasons, error codes and configuration-changed events', async () => {
    await OpenFeature.setProviderAndWait(new FlagsvcProvider({ url: svc.url, sdkKey: svc.serverKey, logger: null }));
    const of = OpenFeature.getClient();
    const alice = { targetingKey: 'qa-alice' };
    const d = await of.getBooleanDetails('new-checkout', false, alice);
    assert.equal(d.value, true);
    assert.equal(d.variant, 'on');
    assert.equal(d.reason, 'TARGETING_MATCH');
    assert.equal((await of.getBooleanDetails('new-checkout', false, { targetingKey: 'user-1' })).reason, 'SPLIT');
    assert.equal(await of.getStringValue('search-ranking', 'classic', { targetingKey: 'x', email: 'a@example.com' }), 'hybrid');
    assert.equal(typeof (await of.getNumberValue('upload.max-size-mb', 1, {})), 'number');
    assert.deepEqual(Object.keys(await of.getObjectValue('homepage.hero', {}, {})).sort(), ['badge', 'cta', 'title']);
    const mismatch = await of.getStringDetails('new-checkout', 'x', alice);
    assert.equal(mismatch.value, 'x');
    assert.equal(mismatch.errorCode, 'TYPE_MISMATCH');
    const missing = await of.getBooleanDetails('no-such-flag', true, alice);
    assert.equal(missing.value, true);
    assert.equal(missing.errorCode, 'FLAG_NOT_FOUND');
    const changed = [];
    of.addHandler(ProviderEvents.ConfigurationChanged, (e) => changed.push(e.flagsChanged));
    await svc.kill('new-checkout', 'openfeature test');
    await until(() => changed.some((keys) => keys && keys.includes('new-checkout')), 2000, 'the configuration-changed event');
    const killed = await of.getBooleanDetails('new-checkout', true, alice);
    assert.equal(killed.value, false);
    assert.equal(killed.reason, 'DISABLED');
    await svc.restore('new-checkout', 'openfeature test');
    await until(() => changed.length >= 2, 2000, 'the restore event');
    assert.equal(await of.getBooleanValue('new-checkout', false, alice), true);
    await OpenFeature.close();
  });
});
