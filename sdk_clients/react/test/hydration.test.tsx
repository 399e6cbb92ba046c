import { act, waitFor } from '@testing-library/react';
import { hydrateRoot } from 'react-dom/client';
import { renderToString } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { FlagsvcProvider, useFlag, useFlagDetails, type FlagAnswer } from '../src/index.js';
import { cacheKey, writeCache } from '../src/cache.js';
import { demoFlags, FakeFlagsvc } from './fakeFlagsvc.js';

function Page() {
  const hero = useFlag('homepage.hero', { title: 'Welcome' });
  const details = useFlagDetails('new-checkout', false);
  return (
    <main>
      <h1>{hero.title}</h1>
      <p id="checkout">{`${details.value}/${details.reason}`}</p>
    </main>
  );
}

let server: FakeFlagsvc;
beforeEach(() => {
  localStorage.clear();
  server = new FakeFlagsvc(demoFlags());
});
afterEach(() => {
  document.body.innerHTML = '';
});

describe('hydration', () => {
  it('hydrates server-rendered initialValues without a mismatch, then goes live', async () => {
    const context = { targetingKey: 'qa-alice' };
    const initialValues: { flags: FlagAnswer[] } = {
      flags: [
        { key: 'homepage.hero', value: { title: 'Rendered on the server' }, variant: 'x', reason: 'STATIC' },
        { key: 'new-checkout', value: false, variant: 'off', reason: 'SPLIT' },
      ],
    };
    // The browser's cache holds other answers: initialValues must still win during hydration.
    writeCache(localStorage, cacheKey(server.url, server.clientKey, context), {
      etag: null,
      savedAt: Date.now(),
      flags: [{ key: 'homepage.hero', value: { title: 'From the cache' }, variant: 'y', reason: 'STATIC' }],
    });
    const app = (
      <FlagsvcProvider url={server.url} clientKey={server.clientKey} context={context} initialValues={initialValues} fetch={server.fetch}>
        <Page />
      </FlagsvcProvider>
    );
    const container = document.createElement('div');
    container.innerHTML = renderToString(app);
    document.body.appendChild(container);
    const serverHtml = container.innerHTML;
    const errors = vi.spyOn(console, 'error');
    const recoverable: unknown[] = [];
    server.hold();
    let root!: ReturnType<typeof hydrateRoot>;
    await act(async () => {
      root = hydrateRoot(container, app, { onRecoverableError: (error) => recoverable.push(error) });
    });
    expect(container.innerHTML).toBe(serverHtml);
    expect(recoverable).toEqual([]);
    expect(errors).not.toHaveBeenCalled();
    // Then the browser's own evaluation replaces them.
    await act(async () => server.release());
    await waitFor(() => expect(container.querySelector('h1')?.textContent).toBe('Winter sale: up to 40% off'));
    expect(container.querySelector('#checkout')?.textContent).toBe('true/TARGETING_MATCH');
    root.unmount();
  });

  it('reports a real mismatch (the check above can fail)', async () => {
    const container = document.createElement('div');
    container.innerHTML = renderToString(
      <FlagsvcProvider url={server.url} clientKey={server.clientKey} initialValues={{ 'homepage.hero': { title: 'A' } }} fetch={server.fetch}>
        <Page />
      </FlagsvcProvider>,
    );
    document.body.appendChild(container);
    const recoverable: unknown[] = [];
    vi.spyOn(console, 'error').mockImplementation(() => undefined);
    server.hold();
    let root!: ReturnType<typeof hydrateRoot>;
    await act(async () => {
      root = hydrateRoot(
        container,
        <FlagsvcProvider url={server.url} clientKey={server.clientKey} initialValues={{ 'homepage.hero': { title: 'B' } }} fetch={server.fetch}>
          <Page />
        </FlagsvcProvider>,
        { onRecoverableError: (error) => recoverable.push(error) },
      );
    });
    expect(recoverable.length).toBeGreaterThan(0);
    root.unmount();
  });
});
