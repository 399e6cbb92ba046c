// Compiled by `tsc --noEmit` in `npm test`: the shipped .d.ts files describe real usage.
import { createClient, type EvaluationResult } from '@flagsvc/node';
import { FlagsvcProvider } from '@flagsvc/node/openfeature';
import { OpenFeature } from '@openfeature/server-sdk';

const client = createClient({ url: 'http://127.0.0.1:1', sdkKey: 'k', defaults: { 'new-checkout': false }, logger: null });
const ready: Promise<boolean> = client.waitForReady(100);
const on: boolean = client.isEnabled('new-checkout', { targetingKey: 'u', country: 'DE' }, false);
const size: number = client.getValue('upload.max-size-mb', { targetingKey: 'u' }, 10);
const name: string = client.getValue('search-ranking', null, 'classic');
const details: EvaluationResult<boolean> = client.evaluate('new-checkout', { targetingKey: 'u' }, false);
const variant: string | null = client.variant('new-checkout', { targetingKey: 'u' });
client.on('change', (keys: string[]) => keys.length).on('error', (e: Error) => e.message);
const reason: string = details.reason;
void [ready, on, size, name, variant, reason];
await OpenFeature.setProviderAndWait(new FlagsvcProvider(client, { readyTimeoutMs: 10 }));
await client.close();
