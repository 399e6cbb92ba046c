/** Fetching `initialValues` on the server (Next.js, Remix, any SSR) for a flash-free first paint. */

import type { EvaluationContext, FlagAnswer } from './types.js';

export interface FetchInitialValuesOptions {
  url: string;
  /** The same client key the browser uses: the page then renders exactly what the browser would. */
  clientKey: string;
  context?: EvaluationContext;
  /** Give up after this long and render defaults (default 1 s). */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

/**
 * One bulk OFREP evaluation, for `<FlagsvcProvider initialValues>`. Never throws: on any
 * failure it resolves to `undefined`, and the page renders defaults (then the browser
 * catches up).
 *
 * @example
 * // app/page.tsx (Next.js App Router, a server component)
 * const initialValues = await fetchInitialValues({ url, clientKey, context });
 * return <Providers initialValues={initialValues} context={context}>...</Providers>;
 */
export async function fetchInitialValues(
  options: FetchInitialValuesOptions,
): Promise<{ flags: FlagAnswer[] } | undefined> {
  const fetchImpl = options.fetch ?? globalThis.fetch;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), options.timeoutMs ?? 1000);
  try {
    const response = await fetchImpl(`${options.url.replace(/\/+$/, '')}/ofrep/v1/evaluate/flags`, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${options.clientKey}`,
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ context: options.context ?? {} }),
      cache: 'no-store',
      signal: abort.signal,
    });
    if (!response.ok) return undefined;
    const body = (await response.json()) as { flags?: unknown };
    if (!Array.isArray(body.flags)) return undefined;
    return { flags: body.flags as FlagAnswer[] };
  } catch {
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
