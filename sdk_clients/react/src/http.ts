/** A refused HTTP answer from flagsvc, with the server's own message. */

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** From `Retry-After` (integer seconds), in milliseconds. */
    readonly retryAfterMs: number | null,
  ) {
    super(message);
    this.name = 'HttpError';
  }

  /** Whether retrying with the same key can never help (the key is wrong, revoked or of the wrong kind). */
  get refused(): boolean {
    return this.status === 401 || this.status === 403;
  }

  static async from(response: Response): Promise<HttpError> {
    let detail = response.statusText || 'no details';
    try {
      const body = (await response.json()) as {
        error?: { code?: string; message?: string };
        errorCode?: string;
        errorDetails?: string;
      };
      if (body.error?.message) detail = `${body.error.code ?? 'error'}: ${body.error.message}`;
      else if (body.errorCode) detail = `${body.errorCode}: ${body.errorDetails ?? ''}`.trim();
    } catch {
      // not JSON: keep the status text
    }
    const retryAfter = Number.parseInt(response.headers.get('retry-after') ?? '', 10);
    return new HttpError(
      response.status,
      `HTTP ${response.status} (${detail})`,
      Number.isFinite(retryAfter) ? retryAfter * 1000 : null,
    );
  }
}
