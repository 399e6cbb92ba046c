/**
 * The framework-free core: answers from OFREP bulk evaluation, kept fresh by the stream,
 * stored per flag so that a change notifies only that flag's readers.
 */

import {
  browserStorage,
  cacheKey,
  canonicalJson,
  readCache,
  writeCache,
  type CachedAnswers,
  type StorageLike,
} from './cache.js';
import { HttpError } from './http.js';
import { readStream } from './stream.js';
import type {
  ClientStatus,
  EvaluationContext,
  FlagAnswer,
  FlagValue,
  InitialValues,
  JsonValue,
} from './types.js';

export interface FlagsvcClientOptions {
  /** flagsvc's base URL, e.g. `https://flags.example.com` (no trailing path). */
  url: string;
  /** A client SDK key (public; sees `client_visible` flags only). Never a server key. */
  clientKey: string;
  /** The evaluation context: `targetingKey` and attributes. */
  context?: EvaluationContext;
  /** Answers to render before the first network answer (e.g. from server rendering). */
  initialValues?: InitialValues;
  /** Where last known answers live; defaults to localStorage in a browser, `null` turns it off. */
  storage?: StorageLike | null;
  /** Cached answers older than this are not shown (default 30 days). */
  cacheMaxAgeMs?: number;
  /** The fetch to use (defaults to the global one). */
  fetch?: typeof fetch;
  /** Listen to the stream for new versions (default true); false polls only. */
  stream?: boolean;
  /** Poll interval while the stream is down or disabled (default 30 s). */
  pollIntervalMs?: number;
  /** Suspense and `ready()` wait at most this long for a first answer (default 3 s). */
  readyTimeoutMs?: number;
  /** First retry delay after a network error (default 1 s); doubles up to `maxBackoffMs`. */
  initialBackoffMs?: number;
  /** Longest retry delay (default 60 s). */
  maxBackoffMs?: number;
  /** A stream with no bytes for this long is reopened (default 45 s: three missed keep-alives). */
  streamIdleTimeoutMs?: number;
  /** Where the single refusal error and warnings go (default `console`). */
  logger?: Pick<Console, 'error' | 'warn'>;
  /** Random source for the backoff jitter (tests pin it). */
  random?: () => number;
}

/** One flag as stored: the bulk OFREP item, with `reason` CACHED until the server confirms it. */
export interface StoredFlag {
  readonly key: string;
  readonly value: FlagValue | undefined;
  readonly variant: string | undefined;
  readonly reason: string;
  readonly errorCode: string | undefined;
  readonly errorDetails: string | undefined;
  readonly flagMetadata: Readonly<Record<string, JsonValue>>;
}

/** What a flag that has no answer reads as: not ready yet, or not known to the server. */
export const NOT_READY: unique symbol = Symbol('flagsvc.notReady');
export const NOT_FOUND: unique symbol = Symbol('flagsvc.notFound');
export type Missing = typeof NOT_READY | typeof NOT_FOUND;

type Listener = () => void;

const BULK_PATH = '/ofrep/v1/evaluate/flags';
/** Follow-up requests when an answer is older than the version the stream announced. */
const BEHIND_RETRIES = 6;
const BEHIND_FIRST_DELAY_MS = 25;

/**
 * The wait before retry number `attempt` (1, 2, ...): the exponential step
 * `initial * 2^(attempt-1)`, capped at `max`, jittered between half and all of it
 * (`random` in [0, 1)), so that many browsers cut off together do not return together.
 */
export function backoffDelay(attempt: number, initial: number, max: number, random: number): number {
  const step = Math.min(max, initial * 2 ** Math.min(attempt - 1, 30));
  return Math.round(step / 2 + (random * step) / 2);
}

/**
 * The environment version a flagsvc bulk ETag (`"<environment>:<version>:<context digest>"`)
 * was computed at, or null for any other ETag.
 */
export function etagVersion(etag: string | null): number | null {
  const match = etag ? /^(?:W\/)?"[^":]+:(\d+):[^":]+"$/.exec(etag) : null;
  return match ? Number(match[1]) : null;
}

function isBulkAnswer(values: InitialValues): values is { flags: FlagAnswer[] } {
  const flags = (values as { flags?: unknown }).flags;
  return (
    Object.keys(values).length === 1 &&
    Array.isArray(flags) &&
    flags.every((item) => item !== null && typeof item === 'object' && 'key' in item)
  );
}

/** `initialValues` as bulk items: plain values read as CACHED answers. */
export function initialAnswers(values: InitialValues | undefined): FlagAnswer[] | null {
  if (!values) return null;
  if (isBulkAnswer(values)) return values.flags;
  return Object.entries(values).map(([key, value]) => ({
    key,
    value: value as FlagValue,
    reason: 'CACHED',
  }));
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (Object.is(a, b)) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  return canonicalJson(a) === canonicalJson(b);
}

/**
 * The client behind `<FlagsvcProvider>`; usable without React too.
 *
 * @example
 * const client = new FlagsvcClient({ url: 'https://flags.example.com', clientKey, context: { targetingKey: 'user-1' } });
 * client.subscribe('new-checkout', () => console.log(client.flag('new-checkout')?.value));
 * client.start();
 */
export class FlagsvcClient {
  readonly url: string;
  readonly clientKey: string;
  private readonly options: FlagsvcClientOptions;
  private readonly fetchImpl: typeof fetch;
  private readonly logger: Pick<Console, 'error' | 'warn'>;
  private readonly random: () => number;
  private storageResolved = false;
  private storageValue: StorageLike | null = null;

  private context: EvaluationContext;
  private contextJson: string;
  private flags = new Map<string, StoredFlag>();
  /** The server's items behind `flags` (with their real reasons), for a 304 after a cached start. */
  private lastAnswers: FlagAnswer[] | null = null;
  private etag: string | null = null;
  private currentStatus: ClientStatus;
  private isSettled: boolean;
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly statusListeners = new Set<Listener>();

  private active = false;
  private refused = false;
  private cacheRead = false;
  private inFlight: Promise<void> | null = null;
  private again = false;
  private requestAbort: AbortController | null = null;
  private failures = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private pollTimer: ReturnType<typeof setTimeout> | undefined;

  private streamAbort: AbortController | null = null;
  private streamConnected = false;
  private streamFailures = 0;
  private streamRetryMs = 2000;
  private streamTimer: ReturnType<typeof setTimeout> | undefined;
  private lastVersion: number | null = null;

  private readyPromise: Promise<void> | null = null;
  private resolveReady: (() => void) | null = null;
  private readyTimer: ReturnType<typeof setTimeout> | undefined;
  private detachDocument: (() => void) | null = null;

  constructor(options: FlagsvcClientOptions) {
    this.options = options;
    this.url = options.url.replace(/\/+$/, '');
    this.clientKey = options.clientKey;
    this.fetchImpl = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.logger = options.logger ?? console;
    this.random = options.random ?? Math.random;
    this.context = options.context ?? {};
    this.contextJson = canonicalJson(this.context);
    const initial = initialAnswers(options.initialValues);
    if (initial) {
      this.replaceFlags(initial, null);
      this.lastAnswers = initial;
    }
    this.currentStatus = initial ? 'cached' : 'loading';
    this.isSettled = initial !== null;
  }

  // -- reading (what the hooks subscribe to)

  /** The stored answer of one flag; the same object until that flag's answer changes. */
  flag(key: string): StoredFlag | undefined {
    return this.flags.get(key);
  }

  /** The flag's value, or a marker saying why there is none. Stable while unchanged. */
  valueOf(key: string): FlagValue | undefined | Missing {
    const stored = this.flags.get(key);
    if (stored) return stored.value;
    return this.isSettled ? NOT_FOUND : NOT_READY;
  }

  /** The stored answer, or a marker saying why there is none. */
  detailsOf(key: string): StoredFlag | Missing {
    return this.flags.get(key) ?? (this.isSettled ? NOT_FOUND : NOT_READY);
  }

  /** Every flag the client has an answer for. */
  keys(): string[] {
    return [...this.flags.keys()];
  }

  get status(): ClientStatus {
    return this.currentStatus;
  }

  /** True while the stream is open (changes arrive within milliseconds); false while polling. */
  get streaming(): boolean {
    return this.streamConnected;
  }

  /** True once there is something to render: answers (cached or fresh), or a settled failure. */
  get settled(): boolean {
    return this.isSettled;
  }

  /** Calls `listener` when this flag's answer changes (and only then). Returns the unsubscribe. */
  subscribe(key: string, listener: Listener): () => void {
    let set = this.listeners.get(key);
    if (!set) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(key) === set) this.listeners.delete(key);
    };
  }

  /** Calls `listener` when `status` or `settled` changes. */
  subscribeStatus(listener: Listener): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /**
   * Resolves once there is something to render (see `settled`), or after `readyTimeoutMs`.
   * Never rejects. The same promise until it resolves (Suspense needs that).
   */
  ready(): Promise<void> {
    if (this.isSettled) return Promise.resolve();
    if (!this.readyPromise) {
      this.readyPromise = new Promise<void>((resolve) => {
        this.resolveReady = resolve;
      });
      this.readyTimer = setTimeout(() => this.settle(), this.options.readyTimeoutMs ?? 3000);
    }
    return this.readyPromise;
  }

  // -- lifecycle

  /** Reads the cache, evaluates, opens the stream, watches tab visibility. Idempotent. */
  start(): void {
    if (this.active) return;
    this.active = true;
    if (this.refused) return;
    if (this.cacheRead) void this.refresh();
    else this.load();
    this.watchDocument();
    if (this.options.stream !== false) this.openStreamSoon(0);
  }

  /**
   * Reads the cache and starts one evaluation, without the stream or timers: what
   * Suspense needs before the provider's effects run.
   */
  load(): void {
    if (this.cacheRead) return; // every suspended component calls this: one evaluation
    this.cacheRead = true;
    if (!this.lastAnswers) this.applyCache();
    void this.refresh();
  }

  /** Stops every request, timer and listener; answers stay. `start()` resumes. */
  stop(): void {
    this.active = false;
    this.requestAbort?.abort();
    this.streamAbort?.abort();
    this.streamAbort = null;
    this.streamConnected = false;
    clearTimeout(this.retryTimer);
    clearTimeout(this.pollTimer);
    clearTimeout(this.streamTimer);
    this.retryTimer = this.pollTimer = this.streamTimer = undefined;
    this.detachDocument?.();
    this.detachDocument = null;
  }

  /** Evaluates for a new context (no-op when equal); cached answers for it show at once. */
  setContext(context: EvaluationContext): void {
    const json = canonicalJson(context);
    if (json === this.contextJson) return;
    this.context = context;
    this.contextJson = json;
    this.etag = null;
    this.lastAnswers = null;
    this.requestAbort?.abort();
    if (!this.applyCache()) this.setStatus('reconciling');
    if (this.active || this.cacheRead) void this.refresh();
  }

  /**
   * Asks flagsvc for fresh answers now. While a request is in flight, calls coalesce:
   * one more request follows it, whatever their number.
   */
  refresh(): Promise<void> {
    if (this.refused) return Promise.resolve();
    if (this.inFlight) {
      this.again = true;
      return this.inFlight;
    }
    clearTimeout(this.retryTimer);
    clearTimeout(this.pollTimer);
    this.retryTimer = this.pollTimer = undefined;
    this.inFlight = (async () => {
      try {
        let behindTries = 0;
        do {
          this.again = false;
          await this.evaluateOnce();
          if (!this.again && this.isBehind() && behindTries < BEHIND_RETRIES) {
            // The stream can announce a version a moment before this edge process
            // evaluates at it: ask again shortly rather than keep the older answer.
            await new Promise((resolve) =>
              setTimeout(resolve, BEHIND_FIRST_DELAY_MS * 2 ** behindTries),
            );
            behindTries += 1;
            this.again = true;
          }
        } while (this.again && !this.refused);
      } finally {
        this.inFlight = null;
      }
      this.schedulePoll();
    })();
    return this.inFlight;
  }

  // -- evaluation

  /** Whether the last answer is older than the version the stream announced. */
  private isBehind(): boolean {
    const answered = etagVersion(this.etag);
    return answered !== null && this.lastVersion !== null && answered < this.lastVersion;
  }

  private get storage(): StorageLike | null {
    if (!this.storageResolved) {
      this.storageResolved = true;
      this.storageValue =
        this.options.storage === undefined ? browserStorage() : this.options.storage;
    }
    return this.storageValue;
  }

  private get cacheKey(): string {
    return cacheKey(this.url, this.clientKey, this.context);
  }

  private applyCache(): boolean {
    const cached = readCache(this.storage, this.cacheKey, this.options.cacheMaxAgeMs);
    if (!cached) return false;
    this.etag = cached.etag;
    this.replaceFlags(cached.flags, 'CACHED');
    this.lastAnswers = cached.flags;
    this.setStatus('cached');
    this.settle();
    return true;
  }

  private async evaluateOnce(): Promise<void> {
    const abort = new AbortController();
    this.requestAbort = abort;
    const contextJson = this.contextJson;
    const headers: Record<string, string> = {
      Authorization: `Bearer ${this.clientKey}`,
      'Content-Type': 'application/json',
      Accept: 'application/json',
    };
    if (this.etag) headers['If-None-Match'] = this.etag;
    try {
      const response = await this.fetchImpl(`${this.url}${BULK_PATH}`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ context: this.context }),
        cache: 'no-store',
        signal: abort.signal,
      });
      if (contextJson !== this.contextJson) return; // answered for a context no longer shown
      if (response.status === 304) {
        if (this.lastAnswers) this.replaceFlags(this.lastAnswers, null);
        this.succeeded();
        return;
      }
      if (!response.ok) throw await HttpError.from(response);
      const body = (await response.json()) as { flags?: unknown };
      if (contextJson !== this.contextJson) return;
      if (!Array.isArray(body.flags)) throw new Error('the bulk answer has no "flags" list');
      const answers = body.flags.filter(
        (item): item is FlagAnswer =>
          item !== null && typeof item === 'object' && typeof item.key === 'string',
      );
      this.etag = response.headers.get('etag');
      this.lastAnswers = answers;
      this.replaceFlags(answers, null);
      const saved: CachedAnswers = { etag: this.etag, savedAt: Date.now(), flags: answers };
      writeCache(this.storage, this.cacheKey, saved);
      this.succeeded();
    } catch (error) {
      if (abort.signal.aborted) return; // stopped, or the context changed
      this.failed(error);
    } finally {
      if (this.requestAbort === abort) this.requestAbort = null;
    }
  }

  private succeeded(): void {
    this.failures = 0;
    this.setStatus('ready');
    this.settle();
  }

  private failed(error: unknown): void {
    if (error instanceof HttpError && error.refused) {
      this.refuse(error);
      return;
    }
    this.settle();
    if (error instanceof HttpError && error.status === 400) {
      // The context is malformed: the same request would fail the same way.
      this.logger.warn(`flagsvc: evaluation refused: ${error.message}; fix the context.`);
      this.setStatus(this.flags.size ? 'stale' : 'ready');
      return;
    }
    this.setStatus('stale');
    this.failures += 1;
    let delay = this.backoff(this.failures);
    if (error instanceof HttpError && error.retryAfterMs !== null) {
      delay = Math.max(delay, error.retryAfterMs);
    }
    if (this.active) {
      this.retryTimer = setTimeout(() => void this.refresh(), delay);
    }
  }

  /** 401/403: the key will not work by retrying; stop everything and say so once. */
  private refuse(error: HttpError): void {
    if (this.refused) return;
    this.refused = true;
    this.logger.error(
      `flagsvc: the client key was refused (${error.message}). Flags keep their last known ` +
        'values or defaults, and no more requests are sent. Check the key passed to FlagsvcProvider.',
    );
    this.stop();
    this.settle();
    this.setStatus('stopped');
  }

  private backoff(attempt: number): number {
    return backoffDelay(
      attempt,
      this.options.initialBackoffMs ?? 1000,
      this.options.maxBackoffMs ?? 60_000,
      this.random(),
    );
  }

  private schedulePoll(): void {
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    if (!this.active || this.refused || this.retryTimer !== undefined || this.streamConnected) {
      return;
    }
    const interval = this.options.pollIntervalMs ?? 30_000;
    if (interval > 0) this.pollTimer = setTimeout(() => void this.refresh(), interval);
  }

  // -- the stream

  private openStreamSoon(delay: number): void {
    clearTimeout(this.streamTimer);
    this.streamTimer = setTimeout(() => {
      this.streamTimer = undefined;
      void this.runStream();
    }, delay);
  }

  private async runStream(): Promise<void> {
    if (!this.active || this.refused || this.streamAbort) return;
    const abort = new AbortController();
    this.streamAbort = abort;
    let openedAt = 0;
    try {
      await readStream({
        url: this.url,
        clientKey: this.clientKey,
        fetch: this.fetchImpl,
        signal: abort.signal,
        idleTimeoutMs: this.options.streamIdleTimeoutMs ?? 45_000,
        onOpen: () => {
          openedAt = Date.now();
          this.streamConnected = true;
          clearTimeout(this.pollTimer);
          this.pollTimer = undefined;
        },
        onVersion: (version) => {
          if (version === this.lastVersion) return;
          this.lastVersion = version;
          void this.refresh();
        },
        onRetry: (ms) => {
          this.streamRetryMs = ms;
        },
      });
      if (abort.signal.aborted) return;
      throw new Error('the server closed the stream');
    } catch (error) {
      if (abort.signal.aborted && this.streamAbort !== abort) return; // stopped
      if (error instanceof HttpError && error.refused) {
        this.refuse(error);
        return;
      }
      if (openedAt && Date.now() - openedAt > 30_000) this.streamFailures = 0;
      this.streamFailures += 1;
      let delay = Math.max(this.streamRetryMs / 2, this.backoff(this.streamFailures));
      if (error instanceof HttpError && error.retryAfterMs !== null) {
        delay = Math.max(delay, error.retryAfterMs);
      }
      if (this.streamAbort === abort) {
        this.streamAbort = null;
        this.streamConnected = false;
      }
      if (this.active && !this.refused) {
        this.openStreamSoon(delay);
        // Changes made while the stream was down are caught by this refresh, then by polling.
        void this.refresh();
      }
    } finally {
      if (this.streamAbort === abort) {
        this.streamAbort = null;
        this.streamConnected = false;
      }
    }
  }

  // -- the page's visibility

  private watchDocument(): void {
    if (this.detachDocument || typeof document === 'undefined') return;
    const wake = () => {
      if (document.visibilityState !== 'visible' || !this.active) return;
      void this.refresh();
      if (this.options.stream !== false && !this.streamAbort) {
        this.streamFailures = 0;
        this.openStreamSoon(0);
      }
    };
    document.addEventListener('visibilitychange', wake);
    const online = typeof window !== 'undefined' ? window : null;
    online?.addEventListener('online', wake);
    this.detachDocument = () => {
      document.removeEventListener('visibilitychange', wake);
      online?.removeEventListener('online', wake);
    };
  }

  // -- the store

  /**
   * Installs a full set of answers, keeping the old object of every flag whose answer is
   * unchanged (and the old value object when only the reason changed), then notifies the
   * readers of the flags that changed, appeared or disappeared.
   */
  private replaceFlags(answers: FlagAnswer[], reason: string | null): void {
    const next = new Map<string, StoredFlag>();
    const changed: string[] = [];
    for (const answer of answers) {
      const previous = this.flags.get(answer.key);
      const value =
        previous && deepEqual(previous.value, answer.value) ? previous.value : answer.value;
      const stored: StoredFlag = {
        key: answer.key,
        value: answer.errorCode ? undefined : value,
        variant: answer.variant,
        reason: reason ?? answer.reason ?? (answer.errorCode ? 'ERROR' : 'UNKNOWN'),
        errorCode: answer.errorCode,
        errorDetails: answer.errorDetails,
        flagMetadata: answer.metadata ?? {},
      };
      if (
        previous &&
        previous.value === stored.value &&
        previous.variant === stored.variant &&
        previous.reason === stored.reason &&
        previous.errorCode === stored.errorCode &&
        previous.errorDetails === stored.errorDetails &&
        deepEqual(previous.flagMetadata, stored.flagMetadata)
      ) {
        next.set(answer.key, previous);
      } else {
        next.set(answer.key, stored);
        changed.push(answer.key);
      }
    }
    for (const key of this.flags.keys()) {
      if (!next.has(key)) changed.push(key);
    }
    this.flags = next;
    for (const key of changed) this.notify(key);
  }

  private notify(key: string): void {
    for (const listener of [...(this.listeners.get(key) ?? [])]) listener();
  }

  private setStatus(status: ClientStatus): void {
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    for (const listener of [...this.statusListeners]) listener();
  }

  private settle(): void {
    clearTimeout(this.readyTimer);
    if (this.isSettled) {
      this.resolveReady?.();
      return;
    }
    this.isSettled = true;
    this.resolveReady?.();
    this.resolveReady = null;
    this.readyPromise = null;
    // Readers of flags with no answer go from "not ready" to "not found".
    for (const key of this.listeners.keys()) {
      if (!this.flags.has(key)) this.notify(key);
    }
    for (const listener of [...this.statusListeners]) listener();
  }
}
