/** Last known answers per (client key's environment, context) in localStorage. */

import type { EvaluationContext, FlagAnswer } from './types.js';

/** The part of the Web Storage API the cache uses (localStorage, or a test double). */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What is stored for one (environment, context). */
export interface CachedAnswers {
  etag: string | null;
  savedAt: number;
  flags: FlagAnswer[];
}

const PREFIX = 'flagsvc:v1:';
const INDEX = `${PREFIX}index`;
/** Contexts remembered per browser (the oldest is dropped past this). */
export const MAX_CACHED_CONTEXTS = 8;
/** Last known answers older than this are not shown (30 days, as OpenFeature's OFREP web provider). */
export const DEFAULT_CACHE_MAX_AGE_MS = 30 * 24 * 3600 * 1000;

/**
 * Canonical JSON (sorted keys at every level), so that `{a, b}` and `{b, a}` name the
 * same context.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) {
    return `[${value.map(canonicalJson).join(',')}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
}

/**
 * A short, stable digest (two 32-bit FNV-1a lanes) for storage keys: the context and
 * the client key are not written into key names as they are.
 */
export function digest(text: string): string {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995);
    b ^= b >>> 15;
  }
  return (a >>> 0).toString(36) + (b >>> 0).toString(36);
}

/**
 * The storage key of one (environment, context). A client key is bound to one
 * environment, so (flagsvc URL, client key) names the environment.
 */
export function cacheKey(url: string, clientKey: string, context: EvaluationContext): string {
  return `${PREFIX}${digest(`${url}\n${clientKey}`)}:${digest(canonicalJson(context))}`;
}

/** localStorage when this runs in a browser that allows it; never throws (Safari private mode, sandboxed iframes). */
export function browserStorage(): StorageLike | null {
  try {
    if (typeof window === 'undefined' || !window.localStorage) return null;
    return window.localStorage;
  } catch {
    return null;
  }
}

/** Answers saved longer ago than `maxAgeMs` are dropped rather than shown. */
export function readCache(
  storage: StorageLike | null,
  key: string,
  maxAgeMs: number = DEFAULT_CACHE_MAX_AGE_MS,
): CachedAnswers | null {
  if (!storage) return null;
  try {
    const raw = storage.getItem(key);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as CachedAnswers;
    if (!parsed || !Array.isArray(parsed.flags)) return null;
    if (!(typeof parsed.savedAt === 'number' && Date.now() - parsed.savedAt <= maxAgeMs)) {
      storage.removeItem(key);
      return null;
    }
    return parsed;
  } catch {
    return null;
  }
}

export function writeCache(storage: StorageLike | null, key: string, answers: CachedAnswers): void {
  if (!storage) return;
  try {
    storage.setItem(key, JSON.stringify(answers));
    let index: string[] = [];
    try {
      const parsed = JSON.parse(storage.getItem(INDEX) ?? '[]') as unknown;
      if (Array.isArray(parsed)) index = parsed.filter((k): k is string => typeof k === 'string');
    } catch {
      index = [];
    }
    index = [key, ...index.filter((k) => k !== key)];
    for (const dropped of index.slice(MAX_CACHED_CONTEXTS)) storage.removeItem(dropped);
    storage.setItem(INDEX, JSON.stringify(index.slice(0, MAX_CACHED_CONTEXTS)));
  } catch {
    // Quota exceeded or storage disabled: the cache is an optimisation, never a failure.
  }
}
