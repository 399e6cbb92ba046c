/** Reads flagsvc's SSE stream with fetch, so the client key travels in a header, not the URL. */

import { createParser } from 'eventsource-parser';

import { HttpError } from './http.js';

export interface StreamOptions {
  url: string;
  clientKey: string;
  fetch: typeof fetch;
  signal: AbortSignal;
  /** No bytes (not even a keep-alive) for this long means a dead connection. */
  idleTimeoutMs: number;
  onOpen(): void;
  /** A `version` (or `patch`) event: the environment now evaluates at `version`. */
  onVersion(version: number): void;
  /** The server's `retry:` field, in milliseconds. */
  onRetry(ms: number): void;
}

/**
 * Opens `GET /api/v1/sdk/stream/` and calls back on each version event until the stream
 * ends, goes idle or `signal` aborts. Resolves when the server closed the stream; rejects
 * with an `HttpError` when it refused it, or with the network error that cut it.
 */
export async function readStream(options: StreamOptions): Promise<void> {
  const idle = new AbortController();
  const abort = () => idle.abort(options.signal.reason);
  if (options.signal.aborted) abort();
  options.signal.addEventListener('abort', abort, { once: true });
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const feedWatchdog = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(
      () => idle.abort(new Error(`no data on the stream for ${options.idleTimeoutMs} ms`)),
      options.idleTimeoutMs,
    );
  };
  try {
    feedWatchdog();
    const response = await options.fetch(`${options.url}/api/v1/sdk/stream/`, {
      headers: { Authorization: `Bearer ${options.clientKey}`, Accept: 'text/event-stream' },
      cache: 'no-store',
      signal: idle.signal,
    });
    if (!response.ok || !response.body) {
      throw await HttpError.from(response);
    }
    options.onOpen();
    const parser = createParser({
      onEvent(event) {
        if (event.event !== 'version' && event.event !== 'patch') return;
        try {
          const data = JSON.parse(event.data) as { version?: unknown };
          if (typeof data.version === 'number') options.onVersion(data.version);
        } catch {
          // A malformed event is ignored; the next one (or the poll) catches up.
        }
      },
      onRetry(ms) {
        options.onRetry(ms);
      },
    });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        feedWatchdog();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      reader.cancel().catch(() => undefined);
    }
    if (idle.signal.aborted) throw idle.signal.reason;
  } catch (error) {
    if (idle.signal.aborted && !(error instanceof HttpError)) throw idle.signal.reason ?? error;
    throw error;
  } finally {
    clearTimeout(watchdog);
    options.signal.removeEventListener('abort', abort);
  }
}
