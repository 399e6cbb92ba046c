// Types of the flagsvc Node SDK (hand-written; `npm test` checks them with tsc --noEmit).

/** A JSON value, as flag variants and context attributes carry them. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** The evaluation context: `targetingKey` plus any attributes (dotted names read nested objects). */
export interface EvaluationContext {
  targetingKey?: string;
  [attribute: string]: unknown;
}

export type ResolutionReason =
  | 'STATIC'
  | 'TARGETING_MATCH'
  | 'SPLIT'
  | 'DISABLED'
  | 'DEFAULT'
  | 'ERROR'
  | 'PREREQUISITE_FAILED';

export type ErrorCodeValue =
  | 'FLAG_NOT_FOUND'
  | 'PARSE_ERROR'
  | 'TYPE_MISMATCH'
  | 'TARGETING_KEY_MISSING'
  | 'INVALID_CONTEXT'
  | 'PROVIDER_NOT_READY'
  | 'GENERAL';

export declare const Reason: Readonly<{ [K in ResolutionReason]: K }>;
export declare const ErrorCode: Readonly<{ [K in ErrorCodeValue]: K }>;

/** One evaluation's result. Results are shared between calls: treat them as read-only. */
export interface EvaluationResult<T = JsonValue> {
  readonly value: T;
  /** The served variant's name; null when the default was returned because of an error. */
  readonly variant: string | null;
  readonly reason: ResolutionReason;
  /** null unless reason is 'ERROR'. */
  readonly errorCode: ErrorCodeValue | null;
  readonly errorMessage: string | null;
}

/** The snapshot document (GET /api/v1/sdk/snapshot/, sdk_clients/testdata/snapshot.schema.json). */
export interface SnapshotDocument {
  schema_version: 1;
  environment: string;
  version: number;
  lineage?: string;
  revision?: string;
  flags: Record<string, unknown>;
  segments: Record<string, unknown>;
}

export interface Logger {
  debug?(...args: unknown[]): void;
  info?(...args: unknown[]): void;
  warn?(...args: unknown[]): void;
  error?(...args: unknown[]): void;
}

export interface ClientOptions {
  /** flagsvc's base URL, e.g. https://flags.example.com. Without it the client serves bootstrap and defaults only. */
  url?: string;
  /** A server SDK key (bound to one environment). */
  sdkKey?: string;
  /** A snapshot document, or the path of a JSON file holding one, served until flagsvc answers. */
  bootstrap?: SnapshotDocument | string;
  /** Values by flag key for calls that pass no default. */
  defaults?: Record<string, JsonValue>;
  /** Polling interval when the stream is off or down (default 30000 ms). */
  pollIntervalMs?: number;
  /** Keep a server-sent events stream open for changes (default true). */
  stream?: boolean;
  /** Bound on each snapshot request and stream connection, and waitForReady's default (default 10000 ms). */
  timeoutMs?: number;
  /** First retry delay after a failure (default 1000 ms); doubles per failure, with jitter. */
  retryInitialMs?: number;
  /** Longest retry delay (default 30000 ms). */
  retryMaxMs?: number;
  /** Reconnect a stream that has been silent this long (default 45000 ms; the server sends keep-alives every 15 s). */
  streamIdleTimeoutMs?: number;
  /** Where messages go (default: warnings and errors on the console; null: nowhere). */
  logger?: Logger | null;
}

export type ChangeListener = (keys: string[]) => void;

export declare class FlagsvcClient {
  constructor(options?: ClientOptions);
  /** Whether a snapshot fetched from flagsvc is held. */
  readonly ready: boolean;
  /** Where the values come from. */
  readonly source: 'server' | 'bootstrap' | 'none';
  /** The version of the snapshot held, or null. */
  readonly version: number | null;
  /** The snapshot document held (read-only), e.g. to save as a bootstrap file. */
  snapshot(): SnapshotDocument | null;
  /** Resolves (never rejects) with whether a snapshot from flagsvc is held, within timeoutMs. */
  waitForReady(timeoutMs?: number): Promise<boolean>;
  /** A boolean flag's value, else `defaultValue` (else the configured default, else false). */
  isEnabled(key: string, context?: EvaluationContext | null, defaultValue?: boolean): boolean;
  /** The served variant's name, or null. */
  variant(key: string, context?: EvaluationContext | null): string | null;
  /** The flag's value when its type matches the default's, else the default. */
  getValue<T extends JsonValue>(key: string, context: EvaluationContext | null | undefined, defaultValue: T): Widen<T>;
  getValue(key: string, context?: EvaluationContext | null): JsonValue;
  /** The full result (value, variant, reason, errorCode, errorMessage). */
  evaluate<T extends JsonValue>(key: string, context: EvaluationContext | null | undefined, defaultValue: T): EvaluationResult<Widen<T>>;
  evaluate(key: string, context?: EvaluationContext | null): EvaluationResult;
  /** Every flag evaluated for one context. */
  evaluateAll(context?: EvaluationContext | null): Record<string, EvaluationResult>;
  /** The flag keys of the snapshot held. */
  keys(): string[];
  on(event: 'change', listener: ChangeListener): this;
  on(event: 'ready', listener: () => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  off(event: 'change' | 'ready' | 'error', listener: (...args: never[]) => void): this;
  /** Stops updating; evaluation keeps serving the last values. */
  close(): Promise<void>;
}

/** `true` widens to boolean, `'a'` to string, `1` to number. */
export type Widen<T> = T extends boolean ? boolean : T extends string ? string : T extends number ? number : T;

export declare function createClient(options?: ClientOptions): FlagsvcClient;

export declare class SnapshotError extends Error {}

/** The engine on its own: a snapshot's flags and segments compiled once (throws SnapshotError). */
export declare class Engine {
  constructor(flags: Record<string, unknown>, segments?: Record<string, unknown>);
  static fromSnapshot(snapshot: { flags?: Record<string, unknown>; segments?: Record<string, unknown> }): Engine;
  evaluate<T extends JsonValue>(key: string, context?: EvaluationContext | null, defaultValue?: T): EvaluationResult;
  has(key: string): boolean;
  keys(): string[];
}

/** Whether `matches` runs on V8's linear-time regular expression engine. */
export declare const linearRegExp: boolean;

declare const sdk: {
  createClient: typeof createClient;
  FlagsvcClient: typeof FlagsvcClient;
  Engine: typeof Engine;
  SnapshotError: typeof SnapshotError;
  Reason: typeof Reason;
  ErrorCode: typeof ErrorCode;
  linearRegExp: boolean;
};
export default sdk;
