/** The shapes the SDK shares with OFREP (OpenFeature Remote Evaluation Protocol) answers. */

/** A flag's value as OFREP serves it: boolean, string, number or a JSON object/array. */
export type FlagValue = boolean | string | number | null | JsonObject | JsonValue[];
export type JsonValue = boolean | string | number | null | JsonObject | JsonValue[];
export interface JsonObject {
  [key: string]: JsonValue;
}

/** The evaluation context: `targetingKey` plus any attributes the flags' rules use. */
export interface EvaluationContext {
  targetingKey?: string;
  [attribute: string]: JsonValue | undefined;
}

/**
 * Standard OpenFeature reasons, plus CACHED for answers rendered from localStorage or
 * `initialValues` before the server confirmed them.
 */
export type Reason =
  | 'STATIC'
  | 'DEFAULT'
  | 'TARGETING_MATCH'
  | 'SPLIT'
  | 'CACHED'
  | 'DISABLED'
  | 'UNKNOWN'
  | 'STALE'
  | 'ERROR'
  | (string & {});

/** OpenFeature's error codes (OFREP answers use the same names). */
export type ErrorCode =
  | 'PROVIDER_NOT_READY'
  | 'FLAG_NOT_FOUND'
  | 'PARSE_ERROR'
  | 'TYPE_MISMATCH'
  | 'TARGETING_KEY_MISSING'
  | 'INVALID_CONTEXT'
  | 'GENERAL'
  | (string & {});

/** One flag's answer: what the hooks return from `useFlagDetails`. */
export interface FlagDetails<T extends FlagValue = FlagValue> {
  key: string;
  value: T;
  variant?: string;
  reason: Reason;
  errorCode?: ErrorCode;
  errorDetails?: string;
  flagMetadata: Record<string, JsonValue>;
}

/**
 * What the server answered for one flag (a bulk OFREP item). `value` is absent when
 * the item is an error (e.g. TARGETING_KEY_MISSING).
 */
export interface FlagAnswer {
  key: string;
  value?: FlagValue;
  variant?: string;
  reason?: Reason;
  errorCode?: ErrorCode;
  errorDetails?: string;
  metadata?: Record<string, JsonValue>;
}

/**
 * Where the client is:
 * - `loading`: nothing known yet (no cache, no initialValues), first answer pending;
 * - `cached`: showing answers from localStorage or initialValues, fresh ones pending;
 * - `ready`: showing the server's latest answers;
 * - `stale`: the server cannot be reached; showing the last known answers (retrying);
 * - `reconciling`: the context changed, answers for the new one pending;
 * - `stopped`: the key was refused (401/403); no more requests until a new client.
 */
export type ClientStatus = 'loading' | 'cached' | 'ready' | 'stale' | 'reconciling' | 'stopped';

/**
 * The `initialValues` shape: a bulk OFREP answer (`{ flags: [...] }`, what
 * `fetchInitialValues` returns), or a plain map of flag key to value (read as CACHED).
 */
export type InitialValues = { flags: FlagAnswer[] } | Record<string, FlagValue>;
