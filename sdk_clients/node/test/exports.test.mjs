// The package's entries: ESM and CommonJS give the same module instance; no runtime dependency.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import * as esm from '@flagsvc/node';
import * as esmProvider from '@flagsvc/node/openfeature';

const require = createRequire(import.meta.url);

test('ESM and CommonJS entries export the same objects', () => {
  const cjs = require('@flagsvc/node');
  for (const name of ['createClient', 'FlagsvcClient', 'Engine', 'SnapshotError', 'Reason', 'ErrorCode']) {
    assert.equal(typeof esm[name], typeof cjs[name], name);
    assert.equal(esm[name], cjs[name], name);
  }
  assert.equal(esmProvider.FlagsvcProvider, require('@flagsvc/node/openfeature').FlagsvcProvider);
});

test('no runtime dependencies: only node: built-ins are required by the core', () => {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
  assert.equal(pkg.dependencies, undefined);
  for (const file of ['client.cjs', 'engine.cjs', 'regex.cjs', 'murmur.cjs', 'scan.cjs', 'sse.cjs', 'index.cjs']) {
    const source = readFileSync(new URL(`../src/${file}`, import.meta.url), 'utf8');
    for (const [, name] of source.matchAll(/require\('([^']+)'\)/g)) {
      assert.ok(name.startsWith('node:') || name.startsWith('./'), `${file} requires ${name}`);
    }
  }
});

test('a client without url serves bootstrap and defaults and never touches the network', async () => {
  const client = esm.createClient({ defaults: { x: true }, logger: null });
  assert.equal(client.isEnabled('x'), true);
  assert.equal(await client.waitForReady(10), false);
  assert.equal(client.source, 'none');
});
