// OpenFeature with the flagsvc provider: local evaluation, standard details.
//
//     FLAGSVC_URL=http://127.0.0.1:8000 FLAGSVC_SERVER_KEY=fsv_server_... node examples/openfeature.mjs
import { OpenFeature, ProviderEvents } from '@openfeature/server-sdk';
import { fileURLToPath } from 'node:url';
import { FlagsvcProvider } from '@flagsvc/node/openfeature';

const provider = new FlagsvcProvider(
  {
    url: process.env.FLAGSVC_URL,
    sdkKey: process.env.FLAGSVC_SERVER_KEY,
    bootstrap: fileURLToPath(new URL('./bootstrap.json', import.meta.url)),
  },
  { readyTimeoutMs: 2000 },
);
await OpenFeature.setProviderAndWait(provider); // resolves within 2 s, flagsvc or not
const client = OpenFeature.getClient('checkout');
client.addHandler(ProviderEvents.ConfigurationChanged, (event) => console.log('changed:', event.flagsChanged));

const details = await client.getBooleanDetails('new-checkout', false, { targetingKey: 'qa-alice' });
console.log(details.value, details.variant, details.reason); // true on TARGETING_MATCH
console.log(await client.getNumberValue('upload.max-size-mb', 10, { targetingKey: 'qa-alice' }));
await OpenFeature.close();
