// The README's examples run: the Express checkout (middleware + legacy path when new-checkout
// is off) and the OpenFeature script; the provider's mapping of flagsvc's own reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { OpenFeature } from '@openfeature/server-sdk';
import { createClient } from '@flagsvc/node';
import { FlagsvcProvider } from '@flagsvc/node/openfeature';
import { createApp } from '../examples/express-checkout.mjs';

const bootstrap = JSON.parse(readFileSync(new URL('../examples/bootstrap.json', import.meta.url), 'utf8'));

async function serve(flags, t) {
  const server = createApp(flags).listen(0);
  await new Promise((resolve) => server.once('listening', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${server.address().port}`;
  return async (user) => (await fetch(`${base}/checkout`, { method: 'POST', headers: { 'x-user-id': user } })).json();
}

test('Express example: targeted users take the new checkout, others follow the rollout', async (t) => {
  const flags = createClient({ bootstrap, logger: null });
  const checkout = await serve(flags, t);
  assert.equal((await checkout('qa-alice')).path, 'new');
  const paths = await Promise.all(Array.from({ length: 40 }, (_, i) => checkout(`user-${i}`)));
  for (let i = 0; i < 40; i++) {
    assert.equal(paths[i].path, flags.isEnabled('new-checkout', { targetingKey: `user-${i}` }) ? 'new' : 'legacy');
  }
  assert.ok(paths.some((p) => p.path === 'legacy') && paths.some((p) => p.path === 'new'));
});

test('Express example: a killed new-checkout sends everyone down the legacy path', async (t) => {
  const killed = structuredClone(bootstrap);
  killed.flags['new-checkout'].kill = { by: 'oncall', at: '2026-01-01T03:00:00Z', reason: 'checkout 500s' };
  const checkout = await serve(createClient({ bootstrap: killed, logger: null }), t);
  assert.equal((await checkout('qa-alice')).path, 'legacy');
});

test('Express example: no flagsvc and no bootstrap means the default (legacy)', async (t) => {
  const checkout = await serve(createClient({ url: 'http://127.0.0.1:9', sdkKey: 'k', logger: null, retryMaxMs: 100 }), t);
  assert.equal((await checkout('qa-alice')).path, 'legacy');
});

test('the OpenFeature example script runs', async () => {
  const script = fileURLToPath(new URL('../examples/openfeature.mjs', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, [script], { env: { ...process.env, FLAGSVC_URL: '' } });
  assert.match(stdout, /true on TARGETING_MATCH/);
  assert.match(stdout, /^100$/m);
});

test('OpenFeature: PREREQUISITE_FAILED maps to TARGETING_MATCH with metadata (as OFREP); no snapshot is PROVIDER_NOT_READY', async () => {
  const doc = structuredClone(bootstrap);
  doc.flags.child = {
    ...doc.flags['new-checkout'], key: 'child', targets: [], default_serve: { variant: 'on' },
    prerequisites: [{ flag: 'new-checkout', variant: 'on' }],
  };
  const provider = new FlagsvcProvider({ bootstrap: doc, logger: null });
  const plain = createClient({ bootstrap: doc, logger: null });
  const outside = Array.from({ length: 50 }, (_, i) => `user-${i}`).find((u) => !plain.isEnabled('new-checkout', { targetingKey: u }));
  assert.equal(plain.evaluate('child', { targetingKey: outside }).reason, 'PREREQUISITE_FAILED');
  assert.deepEqual(provider._resolve('child', true, { targetingKey: outside }), {
    value: false, variant: 'off', reason: 'TARGETING_MATCH', flagMetadata: { flagsvcReason: 'PREREQUISITE_FAILED' },
  });
  assert.equal(provider._resolve('child', true, { targetingKey: 'qa-alice' }).value, true);
  await OpenFeature.setProviderAndWait(new FlagsvcProvider({ url: 'http://127.0.0.1:9', sdkKey: 'k', logger: null }, { readyTimeoutMs: 50 }));
  const details = await OpenFeature.getClient().getBooleanDetails('new-checkout', true, { targetingKey: 'qa-alice' });
  assert.equal(details.value, true);
  assert.equal(details.errorCode, 'PROVIDER_NOT_READY');
  await OpenFeature.close();
});
