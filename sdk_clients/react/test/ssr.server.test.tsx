// @vitest-environment node
import { renderToString } from 'react-dom/server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { Flag, FlagsvcProvider, useFlag, useFlagDetails } from '../src/index.js';

function Page() {
  const hero = useFlag('homepage.hero', { title: 'Welcome' });
  const details = useFlagDetails('new-checkout', false);
  return (
    <main>
      <h1>{hero.title}</h1>
      <p>{`${details.value}/${details.reason}`}</p>
      <Flag name="recommendations.enabled" fallback={<span>no recommendations</span>}>
        <span>recommendations</span>
      </Flag>
    </main>
  );
}

describe('server rendering', () => {
  let errors: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    errors = vi.spyOn(console, 'error');
  });
  afterEach(() => {
    // No React warning either (React 18 warns about useLayoutEffect on the server).
    expect(errors).not.toHaveBeenCalled();
  });

  it('renders initialValues without window, fetch or timers', () => {
    expect(typeof window).toBe('undefined');
    const requests: string[] = [];
    const html = renderToString(
      <FlagsvcProvider
        url="https://flags.test"
        clientKey="fsv_client_test"
        context={{ targetingKey: 'qa-alice' }}
        fetch={async (input) => {
          requests.push(String(input));
          throw new Error('no network during server rendering');
        }}
        initialValues={{
          flags: [
            { key: 'homepage.hero', value: { title: 'Winter sale' }, variant: 'winter-sale', reason: 'STATIC' },
            { key: 'new-checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' },
            { key: 'recommendations.enabled', value: true, variant: 'on', reason: 'STATIC' },
          ],
        }}
      >
        <Page />
      </FlagsvcProvider>,
    );
    expect(html).toContain('<h1>Winter sale</h1>');
    expect(html).toContain('true/TARGETING_MATCH');
    expect(html).toContain('<span>recommendations</span>');
    expect(requests).toEqual([]);
  });

  it('renders defaults without initialValues, even in suspense mode', () => {
    const html = renderToString(
      <FlagsvcProvider url="https://flags.test" clientKey="k" suspense>
        <Page />
      </FlagsvcProvider>,
    );
    expect(html).toContain('<h1>Welcome</h1>');
    expect(html).toContain('false/ERROR');
    expect(html).toContain('no recommendations');
  });

  it('accepts plain values as initialValues (reason CACHED)', () => {
    const html = renderToString(
      <FlagsvcProvider url="https://flags.test" clientKey="k" initialValues={{ 'new-checkout': true, 'homepage.hero': { title: 'Hi' } }}>
        <Page />
      </FlagsvcProvider>,
    );
    expect(html).toContain('<h1>Hi</h1>');
    expect(html).toContain('true/CACHED');
  });
});
