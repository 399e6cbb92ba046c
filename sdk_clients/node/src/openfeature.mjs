// The OpenFeature provider, ESM entry (the same module instance as the CommonJS entry).
import provider from './openfeature.cjs';

export const { FlagsvcProvider } = provider;
export default provider;
