/**
 * The real-browser test page: the flagsvc React SDK (built package) and, beside it, the stock
 * OpenFeature React SDK with the OFREP web provider, both against the same flagsvc.
 * Configured by the query string: ?url=<flagsvc>&key=<client key>&poll=<ms for OpenFeature>.
 */
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { OpenFeature, OpenFeatureProvider, useBooleanFlagValue, useFlag as useOpenFeatureFlag } from '@openfeature/react-sdk';
import { createRoot } from 'react-dom/client';

import {
  Flag,
  FlagsvcClient,
  FlagsvcProvider,
  useFlag,
  useFlagDetails,
  useFlagsvcStatus,
} from '@flagsvc/react';

const params = new URLSearchParams(location.search);
const url = params.get('url') ?? '';
const clientKey = params.get('key') ?? '';
const context = { targetingKey: params.get('user') ?? 'browser-user' };

const client = new FlagsvcClient({ url, clientKey, context, maxBackoffMs: 2000, initialBackoffMs: 250 });
Object.assign(window, { flagsvcClient: client, pageLoadedAt: performance.timeOrigin });

function Recommendations() {
  const on = useFlag('recommendations.enabled', false);
  const details = useFlagDetails('recommendations.enabled', false);
  return (
    <>
      <p id="recs" className={on ? 'on' : 'off'}>
        recommendations: {on ? 'on' : 'off'}
      </p>
      <p id="recs-reason">reason: {details.reason}</p>
    </>
  );
}

function Hero() {
  const hero = useFlag('homepage.hero', { title: 'Welcome', cta: 'Shop now' });
  return (
    <p id="hero">
      hero: {hero.title} — <em>{hero.cta}</em>
    </p>
  );
}

function Status() {
  return <p id="status">status: {useFlagsvcStatus()}</p>;
}

function OpenFeaturePanel() {
  const on = useBooleanFlagValue('recommendations.enabled', false);
  const details = useOpenFeatureFlag('recommendations.enabled', false);
  return (
    <>
      <p id="of-recs" className={on ? 'on' : 'off'}>
        recommendations: {on ? 'on' : 'off'}
      </p>
      <p id="of-reason">reason: {String(details.reason)}</p>
    </>
  );
}

if (params.get('openfeature') !== '0') {
  void OpenFeature.setContext(context);
  void OpenFeature.setProviderAndWait(
    new OFREPWebProvider({
      baseUrl: url,
      headers: [['Authorization', `Bearer ${clientKey}`]],
      pollInterval: Number(params.get('poll') ?? 1000),
    }),
  );
}

createRoot(document.getElementById('root')!).render(
  <>
    <section>
      <h2>
        <code>@flagsvc/react</code> (stream)
      </h2>
      <FlagsvcProvider url={url} clientKey={clientKey} context={context} client={client}>
        <Status />
        <Recommendations />
        <Hero />
        <Flag name="new-checkout" fallback={<p id="checkout">checkout: classic</p>}>
          <p id="checkout">checkout: new</p>
        </Flag>
      </FlagsvcProvider>
    </section>
    {params.get('openfeature') !== '0' && (
      <section>
        <h2>
          <code>@openfeature/react-sdk</code> + <code>@openfeature/ofrep-web-provider</code> (polling{' '}
          {params.get('poll') ?? 1000} ms)
        </h2>
        <OpenFeatureProvider suspendUntilReady={false}>
          <OpenFeaturePanel />
        </OpenFeatureProvider>
      </section>
    )}
  </>,
);
