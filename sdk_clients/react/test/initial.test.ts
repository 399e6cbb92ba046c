import { describe, expect, it } from 'vitest';

import { fetchInitialValues } from '../src/index.js';
import { demoFlags, FakeFlagsvc } from './fakeFlagsvc.js';

describe('fetchInitialValues', () => {
  it('returns the bulk answer for the context', async () => {
    const server = new FakeFlagsvc(demoFlags());
    const values = await fetchInitialValues({
      url: `${server.url}/`,
      clientKey: server.clientKey,
      context: { targetingKey: 'qa-alice' },
      fetch: server.fetch,
    });
    expect(values?.flags.find((flag) => flag.key === 'new-checkout')?.value).toBe(true);
    expect(server.bulkRequests[0].headers.authorization).toBe(`Bearer ${server.clientKey}`);
    expect(server.bulkRequests[0].context).toEqual({ targetingKey: 'qa-alice' });
  });

  it('resolves to undefined on refusal, network error and timeout, never throws', async () => {
    const server = new FakeFlagsvc(demoFlags());
    server.failure = { kind: 'status', status: 401, code: 'unauthenticated' };
    expect(await fetchInitialValues({ url: server.url, clientKey: 'bad', fetch: server.fetch })).toBeUndefined();
    server.failure = { kind: 'network' };
    expect(await fetchInitialValues({ url: server.url, clientKey: 'k', fetch: server.fetch })).toBeUndefined();
    server.failure = null;
    server.hold();
    const started = Date.now();
    expect(await fetchInitialValues({ url: server.url, clientKey: 'k', fetch: server.fetch, timeoutMs: 50 })).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
