/** A scripted flagsvc for unit tests: OFREP bulk (with ETag/304) and the client SSE stream, over a fake fetch. */

import type { EvaluationContext, FlagAnswer } from '../src/types.js';

export interface RecordedRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  context?: EvaluationContext;
}

type Failure = { kind: 'network' } | { kind: 'status'; status: number; code: string; retryAfter?: number };

interface OpenStream {
  controller: ReadableStreamDefaultController<Uint8Array>;
  closed: boolean;
}

export class FakeFlagsvc {
  readonly url = 'https://flags.test';
  readonly clientKey = 'fsv_client_test';
  version = 1;
  requests: RecordedRequest[] = [];
  /** Bulk requests currently unanswered. */
  inFlight = 0;
  maxInFlight = 0;
  failure: Failure | null = null;
  streamFailure: Failure | null = null;
  /** The `retry:` field each stream opens with (flagsvc sends 2000). */
  retryMs = 2000;
  /** While set, bulk answers wait for `release()`. */
  holding = false;
  private held: Array<() => void> = [];
  private streams: OpenStream[] = [];
  private readonly encoder = new TextEncoder();

  constructor(public evaluate: (context: EvaluationContext) => FlagAnswer[]) {}

  get bulkRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/ofrep/v1/evaluate/flags');
  }

  get streamRequests(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/api/v1/sdk/stream/');
  }

  get openStreams(): number {
    return this.streams.filter((s) => !s.closed).length;
  }

  hold(): void {
    this.holding = true;
  }

  release(): void {
    this.holding = false;
    const held = this.held;
    this.held = [];
    for (const go of held) go();
  }

  /** A write in flagsvc: the next version, announced on every open stream. */
  publish(evaluate?: (context: EvaluationContext) => FlagAnswer[]): void {
    if (evaluate) this.evaluate = evaluate;
    this.version += 1;
    this.send(`id: ${this.version}\nevent: version\ndata: {"environment":"production","version":${this.version}}\n\n`);
  }

  /**
   * Like `publish`, but the next `lagging` bulk requests are still answered at the old
   * version (flagsvc's stream may announce a version a moment before the edge answers at it).
   */
  publishLagging(evaluate: (context: EvaluationContext) => FlagAnswer[], lagging: number): void {
    const old = this.evaluate;
    const oldVersion = this.version;
    let left = lagging;
    this.lagging = (context) => {
      if (left <= 0) return null;
      left -= 1;
      return { answers: old(context), version: oldVersion };
    };
    this.publish(evaluate);
  }

  private lagging: ((context: EvaluationContext) => { answers: FlagAnswer[]; version: number } | null) | null =
    null;

  send(raw: string): void {
    for (const stream of this.streams) {
      if (!stream.closed) stream.controller.enqueue(this.encoder.encode(raw));
    }
  }

  closeStreams(): void {
    for (const stream of this.streams) {
      if (!stream.closed) {
        stream.closed = true;
        stream.controller.close();
      }
    }
  }

  /** Bulk answers are computed at this version (lags behind `version` to mimic an edge process that has not installed the announced version yet). */
  answeringVersion: number | null = null;

  private etagFor(context: EvaluationContext): string {
    const digest = Array.from(JSON.stringify(context)).reduce((h, c) => (h * 31 + c.charCodeAt(0)) >>> 0, 7);
    return `"production:${this.answeringVersion ?? this.version}:${digest.toString(16)}"`;
  }

  private refusal(failure: Failure): Response {
    if (failure.kind === 'network') throw new TypeError('Failed to fetch');
    const headers: Record<string, string> = { 'Content-Type': 'application/json' };
    if (failure.retryAfter !== undefined) headers['Retry-After'] = String(failure.retryAfter);
    return new Response(JSON.stringify({ errorCode: failure.code, errorDetails: 'refused by the fake' }), {
      status: failure.status,
      headers,
    });
  }

  fetch: typeof fetch = async (input, init) => {
    const url = new URL(String(input));
    const headers: Record<string, string> = {};
    new Headers(init?.headers).forEach((value, name) => {
      headers[name] = value;
    });
    const method = init?.method ?? 'GET';
    const request: RecordedRequest = { method, path: url.pathname, headers };
    if (init?.body) request.context = (JSON.parse(String(init.body)) as { context: EvaluationContext }).context;
    this.requests.push(request);
    if (url.pathname === '/api/v1/sdk/stream/') return this.openStream(init?.signal ?? undefined);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      if (this.holding) {
        await new Promise<void>((resolve, reject) => {
          this.held.push(resolve);
          init?.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
        });
      } else {
        await Promise.resolve();
      }
      if (this.failure) return this.refusal(this.failure);
      const context = request.context ?? {};
      const lag = this.lagging?.(context);
      if (lag) {
        this.answeringVersion = lag.version;
        const etag = this.etagFor(context);
        this.answeringVersion = null;
        return new Response(JSON.stringify({ flags: lag.answers }), {
          status: 200,
          headers: { 'Content-Type': 'application/json', ETag: etag },
        });
      }
      const etag = this.etagFor(context);
      if (headers['if-none-match'] === etag) return new Response(null, { status: 304, headers: { ETag: etag } });
      return new Response(JSON.stringify({ flags: this.evaluate(context) }), {
        status: 200,
        headers: { 'Content-Type': 'application/json', ETag: etag },
      });
    } finally {
      this.inFlight -= 1;
    }
  };

  private async openStream(signal: AbortSignal | undefined): Promise<Response> {
    await Promise.resolve();
    if (this.streamFailure) return this.refusal(this.streamFailure);
    let stream!: OpenStream;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        stream = { controller, closed: false };
        this.streams.push(stream);
        controller.enqueue(
          this.encoder.encode(
            `retry: ${this.retryMs}\n\nid: ${this.version}\nevent: version\ndata: {"environment":"production","version":${this.version}}\n\n`,
          ),
        );
      },
      cancel: () => {
        stream.closed = true;
      },
    });
    signal?.addEventListener('abort', () => {
      if (!stream.closed) {
        stream.closed = true;
        stream.controller.error(new DOMException('aborted', 'AbortError'));
      }
    });
    return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
  }
}

/** The demo flags of flagsvc's seed data, as a client key sees them. */
export function demoFlags(overrides: Partial<Record<string, FlagAnswer>> = {}) {
  return (context: EvaluationContext): FlagAnswer[] => {
    const alice = context.targetingKey === 'qa-alice';
    const flags: FlagAnswer[] = [
      { key: 'new-checkout', value: alice, variant: alice ? 'on' : 'off', reason: alice ? 'TARGETING_MATCH' : 'SPLIT', metadata: { flagVersion: 2 } },
      { key: 'recommendations.enabled', value: true, variant: 'on', reason: 'STATIC', metadata: { flagVersion: 2 } },
      {
        key: 'homepage.hero',
        value: { title: 'Winter sale: up to 40% off', cta: 'See deals' },
        variant: 'winter-sale',
        reason: 'STATIC',
        metadata: { flagVersion: 2 },
      },
    ];
    return flags.map((flag) => overrides[flag.key] ?? flag);
  };
}
