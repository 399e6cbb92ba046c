/** flagsvc for React: `<FlagsvcProvider>`, `useFlag`, `useVariant`, `useFlagDetails`, `<Flag>`. */

export {
  Flag,
  FlagsvcProvider,
  useFlag,
  useFlagDetails,
  useFlagsvcClient,
  useFlagsvcStatus,
  useVariant,
} from './react.js';
export type { FlagHookOptions, FlagProps, FlagsvcProviderProps } from './react.js';
export { FlagsvcClient } from './client.js';
export type { FlagsvcClientOptions, StoredFlag } from './client.js';
export { fetchInitialValues } from './initial.js';
export type { FetchInitialValuesOptions } from './initial.js';
export type { StorageLike } from './cache.js';
export type {
  ClientStatus,
  ErrorCode,
  EvaluationContext,
  FlagAnswer,
  FlagDetails,
  FlagValue,
  InitialValues,
  JsonObject,
  JsonValue,
  Reason,
} from './types.js';
