import { act, cleanup, render, screen, waitFor } from '@testing-library/react';
import { Profiler, StrictMode, Suspense, useState } from 'react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  Flag,
  FlagsvcClient,
  FlagsvcProvider,
  useFlag,
  useFlagDetails,
  useFlagsvcStatus,
  useVariant,
  type EvaluationContext,
} from '../src/index.js';
import { cacheKey, writeCache } from '../src/cache.js';
import { backoffDelay } from '../src/client.js';
import { demoFlags, FakeFlagsvc } from './fakeFlagsvc.js';

let server: FakeFlagsvc;

beforeEach(() => {
  localStorage.clear();
  server = new FakeFlagsvc(demoFlags());
});

afterEach(() => {
  cleanup();
});

function Checkout() {
  const on = useFlag('new-checkout', false);
  return <p data-testid="checkout">{on ? 'new checkout' : 'old checkout'}</p>;
}

function Details({ name }: { name: string }) {
  const details = useFlagDetails(name, false);
  return (
    <p data-testid={`details-${name}`}>
      {String(details.value)}/{details.reason}/{details.errorCode ?? '-'}
    </p>
  );
}

function Status() {
  return <p data-testid="status">{useFlagsvcStatus()}</p>;
}

function renderWith(ui: React.ReactNode, context: EvaluationContext = { targetingKey: 'qa-alice' }, extra = {}) {
  return render(
    <FlagsvcProvider url={server.url} clientKey={server.clientKey} context={context} fetch={server.fetch} {...extra}>
      {ui}
    </FlagsvcProvider>,
  );
}

const text = (id: string) => screen.getByTestId(id).textContent;

describe('loading', () => {
  it('serves defaults while the first answer is pending, then the server answer', async () => {
    server.hold();
    renderWith(
      <>
        <Checkout />
        <Details name="new-checkout" />
        <Status />
      </>,
    );
    expect(text('checkout')).toBe('old checkout');
    expect(text('details-new-checkout')).toBe('false/ERROR/PROVIDER_NOT_READY');
    expect(text('status')).toBe('loading');
    await act(async () => server.release());
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    expect(text('details-new-checkout')).toBe('true/TARGETING_MATCH/-');
    expect(text('status')).toBe('ready');
    const [request] = server.bulkRequests;
    expect(request.method).toBe('POST');
    expect(request.headers.authorization).toBe(`Bearer ${server.clientKey}`);
    expect(request.context).toEqual({ targetingKey: 'qa-alice' });
  });

  it('serves values of every type, the variant, and <Flag> children or fallback', async () => {
    function Hero() {
      const hero = useFlag('homepage.hero', { title: 'Welcome', cta: 'Shop now' });
      const variant = useVariant('homepage.hero');
      return (
        <p data-testid="hero">
          {hero.title}/{variant ?? 'none'}
        </p>
      );
    }
    renderWith(
      <>
        <Hero />
        <Flag name="new-checkout" fallback={<span data-testid="flag">fallback</span>}>
          <span data-testid="flag">children</span>
        </Flag>
        <Flag name="homepage.hero" variant="winter-sale" fallback={<span data-testid="sale">no sale</span>}>
          <span data-testid="sale">sale</span>
        </Flag>
      </>,
    );
    expect(text('hero')).toBe('Welcome/none');
    expect(text('flag')).toBe('fallback');
    await waitFor(() => expect(text('hero')).toBe('Winter sale: up to 40% off/winter-sale'));
    expect(text('flag')).toBe('children');
    expect(text('sale')).toBe('sale');
  });

  it('answers a wrong-typed default, an unknown flag and an error item with the default and a reason', async () => {
    server.evaluate = (context) => [
      ...demoFlags()(context),
      { key: 'split-flag', errorCode: 'TARGETING_KEY_MISSING', errorDetails: 'this flag splits by targetingKey' },
    ];
    function Typed() {
      const asString = useFlagDetails('new-checkout', 'nope');
      const unknown = useFlagDetails('no-such-flag', 7);
      const split = useFlagDetails('split-flag', 'control');
      return (
        <p data-testid="typed">
          {`${asString.value}:${asString.errorCode} ${unknown.value}:${unknown.errorCode} ${split.value}:${split.errorCode}`}
        </p>
      );
    }
    renderWith(<Typed />);
    await waitFor(() =>
      expect(text('typed')).toBe('nope:TYPE_MISMATCH 7:FLAG_NOT_FOUND control:TARGETING_KEY_MISSING'),
    );
  });

  it('suspends in suspense mode until the first answer, without a flash of defaults', async () => {
    server.hold();
    const seen: string[] = [];
    function Recorder() {
      const on = useFlag('new-checkout', false);
      seen.push(String(on));
      return <p data-testid="checkout">{String(on)}</p>;
    }
    renderWith(
      <Suspense fallback={<p data-testid="checkout">loading</p>}>
        <Recorder />
      </Suspense>,
      { targetingKey: 'qa-alice' },
      { suspense: true },
    );
    expect(text('checkout')).toBe('loading');
    await act(async () => server.release());
    await waitFor(() => expect(text('checkout')).toBe('true'));
    expect(seen).not.toContain('false');
  });

  it('works under StrictMode (effects mounted twice) with a single stream', async () => {
    render(
      <StrictMode>
        <FlagsvcProvider url={server.url} clientKey={server.clientKey} context={{ targetingKey: 'qa-alice' }} fetch={server.fetch}>
          <Checkout />
        </FlagsvcProvider>
      </StrictMode>,
    );
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    await waitFor(() => expect(server.openStreams).toBe(1));
  });
});

describe('cached start', () => {
  it('renders the last known answers at once with reason CACHED, then the fresh ones', async () => {
    const context = { targetingKey: 'qa-alice' };
    writeCache(localStorage, cacheKey(server.url, server.clientKey, context), {
      etag: '"old"',
      savedAt: Date.now(),
      flags: [{ key: 'new-checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' }],
    });
    server.evaluate = demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } });
    server.hold();
    renderWith(
      <>
        <Checkout />
        <Details name="new-checkout" />
        <Status />
      </>,
      context,
    );
    // The first paint already has the cached answer: no flash of the default.
    expect(text('checkout')).toBe('new checkout');
    expect(text('details-new-checkout')).toBe('true/CACHED/-');
    expect(text('status')).toBe('cached');
    expect(server.bulkRequests[0].headers['if-none-match']).toBe('"old"');
    await act(async () => server.release());
    await waitFor(() => expect(text('details-new-checkout')).toBe('false/DISABLED/-'));
    expect(text('checkout')).toBe('old checkout');
  });

  it('keeps the cached answers and restores their real reasons when the server answers 304', async () => {
    const context = { targetingKey: 'qa-alice' };
    // A first visit fills the cache.
    const first = renderWith(<Details name="new-checkout" />, context);
    await waitFor(() => expect(text('details-new-checkout')).toBe('true/TARGETING_MATCH/-'));
    first.unmount();
    // The next load: cached at once, then confirmed by a 304.
    server.requests = [];
    server.hold();
    renderWith(<Details name="new-checkout" />, context);
    expect(text('details-new-checkout')).toBe('true/CACHED/-');
    await act(async () => server.release());
    await waitFor(() => expect(text('details-new-checkout')).toBe('true/TARGETING_MATCH/-'));
    expect(server.bulkRequests[0].headers['if-none-match']).toMatch(/^"production:1:/);
  });

  it('does not show answers older than cacheMaxAgeMs', async () => {
    const context = { targetingKey: 'qa-alice' };
    writeCache(localStorage, cacheKey(server.url, server.clientKey, context), {
      etag: null,
      savedAt: Date.now() - 2 * 3600 * 1000,
      flags: [{ key: 'new-checkout', value: true, variant: 'on', reason: 'TARGETING_MATCH' }],
    });
    server.hold();
    renderWith(<Details name="new-checkout" />, context, { cacheMaxAgeMs: 3600 * 1000 });
    expect(text('details-new-checkout')).toBe('false/ERROR/PROVIDER_NOT_READY');
  });

  it('keeps one cache entry per context', async () => {
    const first = renderWith(<Checkout />, { targetingKey: 'qa-alice' });
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    first.unmount();
    const second = renderWith(<Checkout />, { targetingKey: 'someone-else' });
    await waitFor(() => expect(server.bulkRequests.at(-1)?.context).toEqual({ targetingKey: 'someone-else' }));
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
    second.unmount();
    server.hold();
    renderWith(<Details name="new-checkout" />, { targetingKey: 'qa-alice' });
    expect(text('details-new-checkout')).toBe('true/CACHED/-');
  });
});

describe('live updates', () => {
  it('re-evaluates when the stream announces a new version', async () => {
    renderWith(<Checkout />);
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    await waitFor(() => expect(server.openStreams).toBe(1));
    const stream = server.streamRequests[0];
    expect(stream.headers.authorization).toBe(`Bearer ${server.clientKey}`);
    // A kill: the flag serves its off variant.
    await act(async () =>
      server.publish(demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } })),
    );
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
  });

  it('asks again when the answer is older than the version the stream announced', async () => {
    renderWith(<Checkout />);
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    await waitFor(() => expect(server.openStreams).toBe(1));
    await waitFor(() => expect(server.inFlight).toBe(0));
    const before = server.bulkRequests.length;
    await act(async () =>
      server.publishLagging(
        demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } }),
        2,
      ),
    );
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
    expect(server.bulkRequests.length).toBe(before + 3);
  });

  it('keeps one request in flight and coalesces a burst of versions into one more request', async () => {
    renderWith(<Checkout />);
    await waitFor(() => expect(server.openStreams).toBe(1));
    await waitFor(() => expect(server.inFlight).toBe(0));
    const before = server.bulkRequests.length;
    server.hold();
    await act(async () => {
      for (let i = 0; i < 5; i++) server.publish();
    });
    await waitFor(() => expect(server.bulkRequests.length).toBe(before + 1));
    await act(async () => server.release());
    await waitFor(() => expect(server.bulkRequests.length).toBe(before + 2));
    await act(async () => server.release());
    await waitFor(() => expect(server.inFlight).toBe(0));
    expect(server.bulkRequests.length).toBe(before + 2);
    expect(server.maxInFlight).toBe(1);
  });

  it('reopens a stream the server closed, catching changes made while it was down', async () => {
    renderWith(<Checkout />, { targetingKey: 'qa-alice' }, { initialBackoffMs: 20, pollIntervalMs: 60_000 });
    await waitFor(() => expect(server.openStreams).toBe(1));
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    // flagsvc restarts: the stream ends, and a kill happens before the SDK reconnects.
    server.failure = { kind: 'network' };
    server.streamFailure = { kind: 'network' };
    await act(async () => server.closeStreams());
    server.evaluate = demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } });
    server.version += 1;
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(text('checkout')).toBe('new checkout');
    server.failure = null;
    server.streamFailure = null;
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
    await waitFor(() => expect(server.openStreams).toBe(1));
    expect(server.streamRequests.length).toBeGreaterThanOrEqual(2);
  });

  it('reopens a stream that goes silent (no keep-alives)', async () => {
    server.retryMs = 20;
    renderWith(<Checkout />, { targetingKey: 'qa-alice' }, { streamIdleTimeoutMs: 80, initialBackoffMs: 10 });
    await waitFor(() => expect(server.streamRequests.length).toBeGreaterThanOrEqual(3), { timeout: 2000 });
    expect(server.openStreams).toBeLessThanOrEqual(1);
  });

  it('polls with If-None-Match when the stream is off', async () => {
    renderWith(<Checkout />, { targetingKey: 'qa-alice' }, { stream: false, pollIntervalMs: 30 });
    await waitFor(() => expect(server.bulkRequests.length).toBeGreaterThanOrEqual(3));
    expect(server.streamRequests).toEqual([]);
    expect(server.bulkRequests[2].headers['if-none-match']).toMatch(/^"production:1:/);
    server.evaluate = demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } });
    server.version += 1;
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
  });

  it('re-evaluates when the tab becomes visible again', async () => {
    renderWith(<Checkout />, { targetingKey: 'qa-alice' }, { stream: false });
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    server.evaluate = demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } });
    server.version += 1;
    await act(async () => document.dispatchEvent(new Event('visibilitychange')));
    await waitFor(() => expect(text('checkout')).toBe('old checkout'));
  });

  it('re-evaluates for a new context, showing its cached answers at once', async () => {
    function App() {
      const [user, setUser] = useState('qa-alice');
      return (
        <FlagsvcProvider url={server.url} clientKey={server.clientKey} context={{ targetingKey: user }} fetch={server.fetch}>
          <button onClick={() => setUser(user === 'qa-alice' ? 'visitor' : 'qa-alice')}>switch</button>
          <Details name="new-checkout" />
          <Status />
        </FlagsvcProvider>
      );
    }
    render(<App />);
    await waitFor(() => expect(text('details-new-checkout')).toBe('true/TARGETING_MATCH/-'));
    await act(async () => screen.getByText('switch').click());
    await waitFor(() => expect(text('details-new-checkout')).toBe('false/SPLIT/-'));
    expect(server.bulkRequests.at(-1)?.context).toEqual({ targetingKey: 'visitor' });
    // Back to the first user: her answers are cached, shown before the server answers.
    server.hold();
    await act(async () => screen.getByText('switch').click());
    expect(text('details-new-checkout')).toBe('true/CACHED/-');
    await act(async () => server.release());
    await waitFor(() => expect(text('details-new-checkout')).toBe('true/TARGETING_MATCH/-'));
  });

  it('ignores a context object that is new but equal', async () => {
    function App() {
      const [, setTick] = useState(0);
      return (
        <FlagsvcProvider url={server.url} clientKey={server.clientKey} context={{ targetingKey: 'qa-alice', plan: 'pro' }} fetch={server.fetch} stream={false}>
          <button onClick={() => setTick((t) => t + 1)}>tick</button>
          <Checkout />
        </FlagsvcProvider>
      );
    }
    render(<App />);
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    await act(async () => screen.getByText('tick').click());
    await act(async () => screen.getByText('tick').click());
    expect(server.bulkRequests.length).toBe(1);
  });
});

describe('re-renders', () => {
  it('re-renders only the components that read the changed flag', async () => {
    const renders: Record<string, number> = { checkout: 0, recommendations: 0, hero: 0 };
    function HeroReader() {
      renders.hero += 1;
      return <p data-testid="hero">{useFlag('homepage.hero', { title: '' }).title}</p>;
    }
    function CheckoutReader() {
      renders.checkout += 1;
      return <p data-testid="checkout">{String(useFlag('new-checkout', false))}</p>;
    }
    function RecommendationsReader() {
      renders.recommendations += 1;
      return <p data-testid="recs">{String(useFlagDetails('recommendations.enabled', false).reason)}</p>;
    }
    renderWith(
      <>
        <CheckoutReader />
        <RecommendationsReader />
        <HeroReader />
      </>,
    );
    await waitFor(() => expect(text('checkout')).toBe('true'));
    await waitFor(() => expect(server.openStreams).toBe(1));
    await waitFor(() => expect(server.inFlight).toBe(0));
    const before = { ...renders };
    await act(async () =>
      server.publish(demoFlags({ 'new-checkout': { key: 'new-checkout', value: false, variant: 'off', reason: 'DISABLED' } })),
    );
    await waitFor(() => expect(text('checkout')).toBe('false'));
    expect(renders.checkout).toBe(before.checkout + 1);
    expect(renders.recommendations).toBe(before.recommendations);
    expect(renders.hero).toBe(before.hero);
  });

  it('does not re-render value readers when only the reason changes (CACHED to confirmed)', async () => {
    const context = { targetingKey: 'qa-alice' };
    writeCache(localStorage, cacheKey(server.url, server.clientKey, context), {
      etag: null,
      savedAt: Date.now(),
      flags: demoFlags()(context),
    });
    let commits = 0;
    renderWith(
      <Profiler id="value" onRender={() => (commits += 1)}>
        <Checkout />
      </Profiler>,
      context,
    );
    expect(text('checkout')).toBe('new checkout');
    const afterCache = commits;
    await waitFor(() => expect(server.inFlight).toBe(0));
    await waitFor(() => expect(server.bulkRequests.length).toBeGreaterThan(0));
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(commits).toBe(afterCache);
  });
});

describe('errors', () => {
  function renderCheckoutAndStatus(options: Record<string, number>) {
    return renderWith(
      <>
        <Checkout />
        <Status />
      </>,
      { targetingKey: 'qa-alice' },
      options,
    );
  }

  it('serves defaults when flagsvc is unreachable, and retries with backoff', async () => {
    server.failure = server.streamFailure = { kind: 'network' };
    renderCheckoutAndStatus({ initialBackoffMs: 20, maxBackoffMs: 40 });
    await waitFor(() => expect(text('status')).toBe('stale'));
    expect(text('checkout')).toBe('old checkout');
    await waitFor(() => expect(server.bulkRequests.length).toBeGreaterThanOrEqual(3));
    // flagsvc comes back: the next retry picks up its answers.
    server.failure = null;
    server.streamFailure = null;
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    await waitFor(() => expect(text('status')).toBe('ready'));
  });

  it('keeps the last known values when flagsvc fails later', async () => {
    renderWith(<Checkout />, { targetingKey: 'qa-alice' }, { initialBackoffMs: 20 });
    await waitFor(() => expect(text('checkout')).toBe('new checkout'));
    server.failure = { kind: 'status', status: 503, code: 'GENERAL' };
    await act(async () => server.publish());
    await waitFor(() => expect(server.bulkRequests.length).toBeGreaterThanOrEqual(3));
    expect(text('checkout')).toBe('new checkout');
  });

  it('stops all network activity on 401 with one console error', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    server.failure = server.streamFailure = { kind: 'status', status: 401, code: 'unauthenticated' };
    renderCheckoutAndStatus({ initialBackoffMs: 10, pollIntervalMs: 10 });
    await waitFor(() => expect(text('status')).toBe('stopped'));
    expect(text('checkout')).toBe('old checkout');
    const sent = server.requests.length;
    await act(async () => {
      document.dispatchEvent(new Event('visibilitychange'));
      await new Promise((resolve) => setTimeout(resolve, 100));
    });
    expect(server.requests.length).toBe(sent);
    expect(error).toHaveBeenCalledTimes(1);
    expect(String(error.mock.calls[0][0])).toMatch(/client key was refused .*401/);
  });

  it('stops on 403 too (a kill key used as a client key)', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    server.failure = { kind: 'status', status: 403, code: 'permission_denied' };
    renderWith(<Status />, {}, { stream: false });
    await waitFor(() => expect(text('status')).toBe('stopped'));
    expect(error).toHaveBeenCalledTimes(1);
    expect(server.bulkRequests.length).toBe(1);
  });

  it('waits at least Retry-After on 429', async () => {
    server.failure = { kind: 'status', status: 429, code: 'rate_limited', retryAfter: 1 };
    renderWith(<Status />, {}, { stream: false, initialBackoffMs: 1 });
    await waitFor(() => expect(text('status')).toBe('stale'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(server.bulkRequests.length).toBe(1);
  });

  it('never throws into render, whatever the server sends', async () => {
    server.fetch = async () => new Response('<html>proxy error</html>', { status: 200, headers: { 'Content-Type': 'text/html' } });
    renderWith(<Checkout />, {}, { stream: false, initialBackoffMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(text('checkout')).toBe('old checkout');
  });
});

describe('backoff', () => {
  it('jitters each exponential step between half and all of it, up to the cap', () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000, 8000, 0))).toEqual([500, 1000, 2000, 4000, 4000]);
    expect([1, 2, 3, 4, 5].map((n) => backoffDelay(n, 1000, 8000, 0.999999))).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(backoffDelay(3, 1000, 8000, 0.5)).toBe(3000);
  });

  it('grows exponentially with jitter between half and all of each step', async () => {
    const times: number[] = [];
    const client = new FlagsvcClient({
      url: 'https://down.test',
      clientKey: 'k',
      stream: false,
      storage: null,
      initialBackoffMs: 40,
      maxBackoffMs: 160,
      random: () => 0, // the shortest jittered delay: half of each step
      fetch: async () => {
        times.push(performance.now());
        throw new TypeError('Failed to fetch');
      },
    });
    client.start();
    await waitFor(() => expect(times.length).toBe(5), { timeout: 2000 });
    client.stop();
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // Steps 40, 80, 160, 160 -> waits of 20, 40, 80, 80 ms.
    [20, 40, 80, 80].forEach((expected, i) => {
      expect(gaps[i]).toBeGreaterThanOrEqual(expected - 2);
      expect(gaps[i]).toBeLessThan(expected + 120); // timers fire late on a busy machine, never early
    });
  });
});
