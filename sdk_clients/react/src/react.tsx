/** The React surface: one provider, per-flag hooks (useSyncExternalStore), and <Flag>. */

import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useLayoutEffect,
  useMemo,
  useState,
  useSyncExternalStore,
  type ReactNode,
} from 'react';

import { canonicalJson } from './cache.js';
import {
  FlagsvcClient,
  NOT_FOUND,
  NOT_READY,
  type FlagsvcClientOptions,
  type Missing,
  type StoredFlag,
} from './client.js';
import type { ClientStatus, EvaluationContext, FlagDetails, FlagValue } from './types.js';

interface ProviderValue {
  client: FlagsvcClient;
  suspense: boolean;
}

// Effects that must run before the browser paints (cached answers replace defaults
// without a visible flash); on the server no effect runs, and this avoids React 18's
// useLayoutEffect warning there. Decided once at import, never during render.
const useBeforePaintEffect = typeof document !== 'undefined' ? useLayoutEffect : useEffect;

const FlagsvcContext = createContext<ProviderValue | null>(null);

let inertClient: FlagsvcClient | null = null;
let warnedNoProvider = false;

function useProviderValue(): ProviderValue {
  const value = useContext(FlagsvcContext);
  if (value) return value;
  // Outside a provider, hooks serve their defaults rather than breaking the render.
  if (!warnedNoProvider) {
    warnedNoProvider = true;
    console.warn('flagsvc: a flag hook is used outside <FlagsvcProvider>; it serves defaults.');
  }
  inertClient ??= new FlagsvcClient({ url: '', clientKey: '', storage: null, stream: false });
  return { client: inertClient, suspense: false };
}

export interface FlagsvcProviderProps extends Omit<FlagsvcClientOptions, 'url' | 'clientKey'> {
  /** flagsvc's base URL. */
  url: string;
  /** A client SDK key (public). */
  clientKey: string;
  /** The evaluation context; a change (by content, not identity) re-evaluates. */
  context?: EvaluationContext;
  /** Hooks suspend until the first answer (or `readyTimeoutMs`) instead of serving defaults. */
  suspense?: boolean;
  /** Use this client instead of creating one (sharing it outside React, tests). */
  client?: FlagsvcClient;
  children?: ReactNode;
}

/**
 * Evaluates the flags of one environment for one context and keeps them fresh.
 *
 * @example
 * <FlagsvcProvider url="https://flags.example.com" clientKey={CLIENT_KEY}
 *                  context={{ targetingKey: user.id, plan: user.plan }}>
 *   <App />
 * </FlagsvcProvider>
 */
export function FlagsvcProvider(props: FlagsvcProviderProps): ReactNode {
  const { url, clientKey, context, suspense = false, client: given, children, ...options } = props;
  const create = () => new FlagsvcClient({ ...options, url, clientKey, context });
  const [owned, setOwned] = useState<FlagsvcClient | null>(() => (given ? null : create()));
  let client = given ?? owned;
  if (!client || (!given && (client.url !== url.replace(/\/+$/, '') || client.clientKey !== clientKey))) {
    // Another server or key: another client (the old one is stopped by its effect's cleanup).
    client = create();
    setOwned(client);
  }
  const active = client;

  useBeforePaintEffect(() => {
    active.start();
    return () => active.stop();
  }, [active]);

  // Keyed on the context's content, not its identity: `context={{ ... }}` is a new object
  // on every render of the parent.
  const contextJson = context === undefined ? null : canonicalJson(context);
  useBeforePaintEffect(() => {
    if (context !== undefined) active.setContext(context);
  }, [active, contextJson]);

  const value = useMemo(() => ({ client: active, suspense }), [active, suspense]);
  return <FlagsvcContext.Provider value={value}>{children}</FlagsvcContext.Provider>;
}

export interface FlagHookOptions {
  /** Suspend while the first answer is pending (overrides the provider's `suspense`). */
  suspense?: boolean;
}

function suspendIfLoading(client: FlagsvcClient, suspense: boolean, marker: unknown): void {
  // Suspense only in a browser: on the server nothing is fetched, defaults render.
  if (!suspense || marker !== NOT_READY || typeof window === 'undefined') return;
  client.load(); // may find cached answers, then nothing is thrown
  if (!client.settled) throw client.ready();
}

function typeMatches(value: FlagValue | undefined, defaultValue: unknown): boolean {
  if (defaultValue === undefined || value === undefined) return true;
  if (value === null || defaultValue === null) return value === defaultValue || defaultValue === null;
  if (typeof defaultValue === 'object') return typeof value === 'object';
  return typeof value === typeof defaultValue;
}

function useFlagSubscription(client: FlagsvcClient, key: string) {
  return useCallback((onChange: () => void) => client.subscribe(key, onChange), [client, key]);
}

/**
 * A flag's value; `defaultValue` while unknown, on errors and when the served value has
 * another type. Re-renders only when this flag's value changes.
 *
 * @example
 * const newCheckout = useFlag('new-checkout', false);
 * const hero = useFlag('homepage.hero', { title: 'Welcome', cta: 'Shop now' });
 */
export function useFlag<T extends FlagValue>(
  key: string,
  defaultValue: T,
  options?: FlagHookOptions,
): T {
  const { client, suspense } = useProviderValue();
  const subscribe = useFlagSubscription(client, key);
  const read = () => client.valueOf(key);
  const value = useSyncExternalStore(subscribe, read, read);
  suspendIfLoading(client, options?.suspense ?? suspense, value);
  if (value === NOT_READY || value === NOT_FOUND || value === undefined) return defaultValue;
  return typeMatches(value, defaultValue) ? (value as T) : defaultValue;
}

/**
 * The variant served for a flag (e.g. `"on"`, `"winter-sale"`), or undefined when unknown.
 *
 * @example
 * const variant = useVariant('homepage.hero'); // "winter-sale"
 */
export function useVariant(key: string, options?: FlagHookOptions): string | undefined {
  const { client, suspense } = useProviderValue();
  const subscribe = useFlagSubscription(client, key);
  const read = () => {
    const stored = client.detailsOf(key);
    return typeof stored === 'symbol' ? stored : stored.variant;
  };
  const variant = useSyncExternalStore(subscribe, read, read);
  suspendIfLoading(client, options?.suspense ?? suspense, variant);
  return typeof variant === 'symbol' ? undefined : variant;
}

function resolveDetails<T extends FlagValue>(
  key: string,
  stored: StoredFlag | Missing,
  defaultValue: T,
): FlagDetails<T> {
  if (stored === NOT_READY || stored === NOT_FOUND) {
    return {
      key,
      value: defaultValue,
      reason: 'ERROR',
      errorCode: stored === NOT_READY ? 'PROVIDER_NOT_READY' : 'FLAG_NOT_FOUND',
      errorDetails:
        stored === NOT_READY
          ? 'no answer from flagsvc yet'
          : 'flagsvc did not answer for this flag (unknown, or not client_visible)',
      flagMetadata: {},
    };
  }
  const details: FlagDetails<T> = {
    key,
    value: defaultValue,
    variant: stored.variant,
    reason: stored.reason,
    flagMetadata: stored.flagMetadata as FlagDetails['flagMetadata'],
  };
  if (stored.errorCode || stored.value === undefined) {
    return {
      ...details,
      reason: 'ERROR',
      errorCode: stored.errorCode ?? 'GENERAL',
      errorDetails: stored.errorDetails,
    };
  }
  if (!typeMatches(stored.value, defaultValue)) {
    return {
      ...details,
      reason: 'ERROR',
      errorCode: 'TYPE_MISMATCH',
      errorDetails: `served a ${typeof stored.value}, the default is a ${typeof defaultValue}`,
    };
  }
  return { ...details, value: stored.value as T };
}

/**
 * The full answer for a flag: value, variant, reason (CACHED before the server confirms),
 * errorCode and errorDetails, flagMetadata.
 *
 * @example
 * const { value, reason, errorCode } = useFlagDetails('new-checkout', false);
 */
export function useFlagDetails<T extends FlagValue = FlagValue>(
  key: string,
  defaultValue?: T,
  options?: FlagHookOptions,
): FlagDetails<T> {
  const { client, suspense } = useProviderValue();
  const subscribe = useFlagSubscription(client, key);
  const read = () => client.detailsOf(key);
  const stored = useSyncExternalStore(subscribe, read, read);
  suspendIfLoading(client, options?.suspense ?? suspense, stored);
  const fallback = (defaultValue === undefined ? null : defaultValue) as T;
  const defaultJson = defaultValue !== null && typeof defaultValue === 'object' ? canonicalJson(defaultValue) : defaultValue;
  // Same answer in, same object out: children memoised on it do not re-render.
  return useMemo(() => resolveDetails(key, stored, fallback), [key, stored, defaultJson]);
}

/**
 * The client's status: `loading`, `cached`, `ready`, `stale`, `reconciling` or `stopped`.
 *
 * @example
 * const status = useFlagsvcStatus();
 * if (status === 'loading') return <Spinner />;
 */
export function useFlagsvcStatus(): ClientStatus {
  const { client } = useProviderValue();
  const subscribe = useCallback((onChange: () => void) => client.subscribeStatus(onChange), [client]);
  const read = () => client.status;
  return useSyncExternalStore(subscribe, read, read);
}

/** The provider's client (to call `refresh()`, or read flags outside hooks). */
export function useFlagsvcClient(): FlagsvcClient {
  return useProviderValue().client;
}

export interface FlagProps {
  /** The flag's key. */
  name: string;
  /** Show `children` when this variant is served; without it, when the value is `true`. */
  variant?: string;
  /** What to show otherwise (also while unknown and on errors). */
  fallback?: ReactNode;
  suspense?: boolean;
  children?: ReactNode;
}

/**
 * Shows `children` when a boolean flag is on (or the named variant is served), else `fallback`.
 *
 * @example
 * <Flag name="new-checkout" fallback={<OldCheckout />}><NewCheckout /></Flag>
 * <Flag name="homepage.hero" variant="winter-sale"><SaleBanner /></Flag>
 */
export function Flag({ name, variant, fallback = null, suspense, children }: FlagProps): ReactNode {
  const options = suspense === undefined ? undefined : { suspense };
  const value = useFlag<boolean>(name, false, options);
  const served = useVariant(name, options);
  const on = variant === undefined ? value === true : served === variant;
  return on ? children : fallback;
}
