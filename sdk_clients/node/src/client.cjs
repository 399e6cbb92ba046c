'use strict';
// The flagsvc client: keeps one environment's snapshot fresh (SSE stream, ETag polling as the
// fallback) and evaluates flags synchronously and locally with the engine. It never throws
// into, rejects into or keeps alive the process that uses it: network failures are logged
// and retried with backoff; every timer and socket of the updater is unref'd.

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const zlib = require('node:zlib');

const { Engine, ErrorCode, Reason, SnapshotError, result } = require('./engine.cjs');
const { SSEParser } = require('./sse.cjs');

const SNAPSHOT_PATH = 'api/v1/sdk/snapshot/';
const STREAM_PATH = 'api/v1/sdk/stream/';
const MAX_SNAPSHOT_BYTES = 64 * 1024 * 1024;
const USER_AGENT = 'flagsvc-node/0.1.0';

const silent = () => {};
const DEFAULT_LOGGER = Object.freeze({
  debug: silent,
  info: silent,
  warn: (...args) => console.warn('[flagsvc]', ...args),
  error: (...args) => console.error('[flagsvc]', ...args),
});

function normaliseLogger(logger) {
  if (logger === undefined) return DEFAULT_LOGGER;
  if (logger === null || logger === false) {
    return { debug: silent, info: silent, warn: silent, error: silent };
  }
  const pick = (name, fallback) => {
    const fn = typeof logger[name] === 'function' ? logger[name].bind(logger) : fallback;
    return (...args) => {
      try {
        fn(...args);
      } catch {
        // a failing logger is not our caller's problem
      }
    };
  };
  const warn = pick('warn', silent);
  return { debug: pick('debug', silent), info: pick('info', silent), warn, error: pick('error', warn) };
}

function deepEqual(a, b) {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  for (const k of ka) {
    if (!Object.prototype.hasOwnProperty.call(b, k) || !deepEqual(a[k], b[k])) return false;
  }
  return true;
}

/** Checks a snapshot document's envelope (the flags and segments are checked by compiling). */
function checkEnvelope(doc) {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new SnapshotError('snapshot', 'must be a JSON object');
  }
  if (doc.schema_version !== 1) {
    throw new SnapshotError('snapshot.schema_version', `${JSON.stringify(doc.schema_version)} is not 1`);
  }
  if (typeof doc.environment !== 'string') throw new SnapshotError('snapshot.environment', 'must be a string');
  if (!Number.isInteger(doc.version) || doc.version < 1) {
    throw new SnapshotError('snapshot.version', 'must be a positive integer');
  }
  for (const section of ['flags', 'segments']) {
    const value = doc[section];
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new SnapshotError(`snapshot.${section}`, 'must be an object');
    }
  }
}

/** Flag keys whose conditions name one of `segmentKeys`. */
function flagsUsingSegments(flags, segmentKeys) {
  const out = [];
  if (!segmentKeys.size) return out;
  for (const [key, flag] of Object.entries(flags)) {
    const rules = Array.isArray(flag.rules) ? flag.rules : [];
    const uses = rules.some(
      (rule) =>
        Array.isArray(rule && rule.conditions) &&
        rule.conditions.some(
          (c) =>
            c &&
            (c.operator === 'in_segment' || c.operator === 'not_in_segment') &&
            (Array.isArray(c.value) ? c.value : [c.value]).some((s) => segmentKeys.has(s)),
        ),
    );
    if (uses) out.push(key);
  }
  return out;
}

function changedKeys(before, after) {
  const keys = new Set();
  const oldFlags = before ? before.flags : {};
  const newFlags = after.flags;
  for (const key of Object.keys(newFlags)) if (!deepEqual(oldFlags[key], newFlags[key])) keys.add(key);
  for (const key of Object.keys(oldFlags)) if (!(key in newFlags)) keys.add(key);
  const segments = new Set();
  const oldSegments = before ? before.segments : {};
  for (const key of Object.keys(after.segments)) {
    if (!deepEqual(oldSegments[key], after.segments[key])) segments.add(key);
  }
  for (const key of Object.keys(oldSegments)) if (!(key in after.segments)) segments.add(key);
  for (const key of flagsUsingSegments(newFlags, segments)) keys.add(key);
  return [...keys].sort();
}

function typeMatches(value, defaultValue, flagType) {
  if (defaultValue === undefined || defaultValue === null) return true;
  const expected = typeof defaultValue;
  if (expected === 'object') return flagType === 'json';
  return typeof value === expected;
}

class FlagsvcClient {
  /**
   * @param {object} options see index.d.ts (ClientOptions)
   */
  constructor(options = {}) {
    const o = options && typeof options === 'object' ? options : {};
    this._log = normaliseLogger(o.logger);
    this._defaults = o.defaults && typeof o.defaults === 'object' ? { ...o.defaults } : {};
    this._pollIntervalMs = positive(o.pollIntervalMs, 30000);
    this._useStream = o.stream !== false;
    this._timeoutMs = positive(o.timeoutMs, 10000);
    this._retryInitialMs = positive(o.retryInitialMs, 1000);
    this._retryMaxMs = positive(o.retryMaxMs, 30000);
    this._streamIdleMs = positive(o.streamIdleTimeoutMs, 45000);
    this._sdkKey = typeof o.sdkKey === 'string' ? o.sdkKey : '';

    this._engine = null; // the compiled snapshot evaluations read
    this._document = null; // the snapshot it was compiled from
    this._source = 'none'; // 'none' | 'bootstrap' | 'server'
    this._etag = null;
    this._lastEventId = null;
    this._listeners = { change: [], ready: [], error: [] };
    this._waiters = new Set();
    this._closed = false;
    this._stopped = false; // 401/403: no more requests
    this._fetching = null;
    this._fetchAgain = false;
    this._pollTimer = null;
    this._pollFailures = 0;
    this._streamTimer = null;
    this._streamFailures = 0;
    this._streamRetryMs = 2000;
    this._streamReq = null;
    this._streamLive = false;
    this._snapshotReq = null;
    this._outage = false;
    this._thrownOnce = false;
    this._retryAfterMs = undefined; // what a 429/503 on the snapshot asked for
    this._installs = 0; // snapshots installed so far: an answer overtaken by a patch is dropped

    this._base = null;
    if (o.url !== undefined && o.url !== null) {
      try {
        const base = new URL(String(o.url));
        if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error('not http(s)');
        if (!base.pathname.endsWith('/')) base.pathname += '/';
        this._base = base;
      } catch (error) {
        this._log.error(`createClient: url ${JSON.stringify(o.url)} is not an http(s) URL (${error.message}); serving bootstrap and defaults only`);
      }
    }
    if (this._base && !this._sdkKey) {
      this._log.error('createClient: no sdkKey given; use a server SDK key for the environment. Serving bootstrap and defaults only');
      this._base = null;
    }
    if (o.bootstrap !== undefined && o.bootstrap !== null) this._bootstrap(o.bootstrap);
    if (this._base) {
      if (this._useStream) {
        this._refresh();
        this._openStream();
      } else {
        this._schedulePoll(0); // polls back off on failure, then keep pollIntervalMs
      }
    }
  }

  // --- public: state ---------------------------------------------------------------------

  /** Whether the client holds a snapshot fetched from flagsvc. */
  get ready() {
    return this._source === 'server';
  }

  /** Where the values come from: 'server', 'bootstrap' or 'none' (defaults only). */
  get source() {
    return this._source;
  }

  /** The version of the snapshot evaluations read, or null. */
  get version() {
    return this._document ? this._document.version : null;
  }

  /** The current snapshot document (read-only), e.g. to save as a bootstrap file. */
  snapshot() {
    return this._document;
  }

  /**
   * Resolves (never rejects) with whether a snapshot from flagsvc is held, as soon as one is
   * or after `timeoutMs`; resolves false at once after close() or a refused key.
   */
  waitForReady(timeoutMs) {
    if (this.ready) return Promise.resolve(true);
    if (this._closed || this._stopped || !this._base) return Promise.resolve(false);
    const limit = positive(timeoutMs, this._timeoutMs);
    return new Promise((resolve) => {
      const waiter = (ok) => {
        clearTimeout(timer);
        this._waiters.delete(waiter);
        resolve(ok);
      };
      // Not unref'd: the caller awaits it, so it keeps the process alive for at most `limit`.
      const timer = setTimeout(() => waiter(this.ready), limit);
      this._waiters.add(waiter);
    });
  }

  // --- public: evaluation (synchronous, never throws) --------------------------------------

  /** A boolean flag's value; `defaultValue` (else the configured default, else false). */
  isEnabled(key, context, defaultValue) {
    try {
      const engine = this._engine;
      if (engine !== null) {
        const r = engine.lookup(key, context);
        if (r !== undefined && typeof r.value === 'boolean') return r.value;
      }
    } catch (error) {
      this._evaluationFailed(key, error);
    }
    if (typeof defaultValue === 'boolean') return defaultValue;
    const configured = this._defaults[key];
    return typeof configured === 'boolean' ? configured : false;
  }

  /** The served variant's name, or null. */
  variant(key, context) {
    try {
      const engine = this._engine;
      if (engine !== null) {
        const r = engine.lookup(key, context);
        if (r !== undefined) return r.variant;
      }
    } catch (error) {
      this._evaluationFailed(key, error);
    }
    return null;
  }

  /** The flag's value when its type matches `defaultValue`'s, else `defaultValue`. */
  getValue(key, context, defaultValue) {
    const fallback = defaultValue === undefined ? this._configuredDefault(key) : defaultValue;
    try {
      const engine = this._engine;
      if (engine !== null) {
        const r = engine.lookup(key, context);
        if (r !== undefined && typeMatches(r.value, fallback, engine.typeOf(key))) return r.value;
      }
    } catch (error) {
      this._evaluationFailed(key, error);
    }
    return fallback;
  }

  /** The full result: value, variant, reason, errorCode (null unless reason is ERROR), errorMessage. */
  evaluate(key, context, defaultValue) {
    const fallback = defaultValue === undefined ? this._configuredDefault(key) : defaultValue;
    try {
      const engine = this._engine;
      if (engine === null) {
        return result(fallback, null, Reason.ERROR, ErrorCode.PROVIDER_NOT_READY, 'no snapshot yet (flagsvc not reached, no bootstrap)');
      }
      const r = engine.lookup(key, context);
      if (r === undefined) {
        return result(fallback, null, Reason.ERROR, ErrorCode.FLAG_NOT_FOUND, `flag '${key}' does not exist in this environment`);
      }
      const type = engine.typeOf(key);
      if (!typeMatches(r.value, fallback, type)) {
        return result(fallback, null, Reason.ERROR, ErrorCode.TYPE_MISMATCH, `flag '${key}' is a ${type} flag; the default given is a ${typeof fallback}`);
      }
      return r;
    } catch (error) {
      this._evaluationFailed(key, error);
      return result(fallback, null, Reason.ERROR, ErrorCode.GENERAL, String(error && error.message));
    }
  }

  /** The keys of the flags in the snapshot held (empty without one). */
  keys() {
    return this._engine === null ? [] : this._engine.keys();
  }

  /** Every flag of the snapshot evaluated for one context: {key: result}. */
  evaluateAll(context) {
    const out = {};
    const engine = this._engine;
    if (engine === null) return out;
    for (const key of engine.keys()) out[key] = this.evaluate(key, context);
    return out;
  }

  // --- public: events and lifecycle --------------------------------------------------------

  /**
   * Subscribes to 'change' (keys => void: the flag keys whose definition changed),
   * 'ready' (() => void) or 'error' (error => void: refused key, rejected snapshot).
   */
  on(event, listener) {
    if (this._listeners[event] && typeof listener === 'function') this._listeners[event].push(listener);
    return this;
  }

  off(event, listener) {
    const list = this._listeners[event];
    if (list) {
      const at = list.indexOf(listener);
      if (at >= 0) list.splice(at, 1);
    }
    return this;
  }

  /** Stops the updater: no timer, socket or request is left; evaluation keeps the last values. */
  close() {
    if (this._closed) return Promise.resolve();
    this._closed = true;
    this._halt();
    return Promise.resolve();
  }

  // --- internals: evaluation ---------------------------------------------------------------

  _configuredDefault(key) {
    return Object.prototype.hasOwnProperty.call(this._defaults, key) ? this._defaults[key] : null;
  }

  _evaluationFailed(key, error) {
    if (!this._thrownOnce) {
      this._thrownOnce = true;
      this._log.error(`evaluating '${key}' failed (${error && error.message}); serving the default. Reported once.`);
    }
  }

  _emit(event, arg) {
    for (const listener of [...this._listeners[event]]) {
      try {
        listener(arg);
      } catch (error) {
        this._log.error(`a '${event}' listener threw: ${error && error.message}`);
      }
    }
  }

  // --- internals: snapshots ----------------------------------------------------------------

  _bootstrap(bootstrap) {
    try {
      let doc = bootstrap;
      if (typeof bootstrap === 'string') doc = JSON.parse(fs.readFileSync(bootstrap, 'utf8'));
      this._install(doc, 'bootstrap');
    } catch (error) {
      this._log.error(`bootstrap refused (${error.message}); starting without it`);
    }
  }

  /** Compiles and installs a whole document; throws (installing nothing) if it is malformed. */
  _install(doc, source, reuse) {
    checkEnvelope(doc);
    const engine = new Engine(doc.flags, doc.segments, reuse ? this._engine : undefined);
    const previous = this._document;
    const changed = changedKeys(previous, doc);
    this._installs += 1;
    this._engine = engine;
    this._document = doc;
    const wasReady = this.ready;
    if (source === 'server' || this._source !== 'server') this._source = source;
    if (previous !== null && changed.length) this._emit('change', changed);
    if (!wasReady && this.ready) {
      for (const waiter of [...this._waiters]) waiter(true);
      this._emit('ready');
    }
  }

  _reject(what, error) {
    this._log.error(`${what} rejected whole, keeping version ${this.version ?? 'none'}: ${error.message}`);
    this._emit('error', error);
  }

  /** A conditional GET of the snapshot; coalesces concurrent calls. Never rejects. */
  _refresh() {
    if (this._closed || this._stopped || !this._base) return Promise.resolve(false);
    if (this._fetching) {
      this._fetchAgain = true;
      return this._fetching;
    }
    this._fetching = this._fetchSnapshot().then(
      (ok) => {
        this._fetching = null;
        if (this._fetchAgain && !this._closed) {
          this._fetchAgain = false;
          return this._refresh();
        }
        return ok;
      },
      () => {
        this._fetching = null;
        return false;
      },
    );
    return this._fetching;
  }

  _fetchSnapshot() {
    return new Promise((resolve) => {
      const url = new URL(SNAPSHOT_PATH, this._base);
      const headers = {
        authorization: `Bearer ${this._sdkKey}`,
        accept: 'application/json',
        'accept-encoding': 'gzip',
        'user-agent': USER_AGENT,
      };
      if (this._etag) headers['if-none-match'] = this._etag;
      const installsAtStart = this._installs;
      let settled = false;
      const done = (ok, problem) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this._snapshotReq = null;
        if (ok) this._recovered();
        else if (problem) this._failed(problem);
        resolve(ok);
      };
      const req = (url.protocol === 'https:' ? https : http).get(url, { headers, agent: false }, (res) => {
        const status = res.statusCode;
        if (status === 304) {
          res.resume();
          done(true);
          return;
        }
        if (status !== 200) {
          res.resume();
          this._retryAfterMs = this._refused(status, res.headers, 'snapshot');
          done(false, status === 401 || status === 403 ? null : `snapshot answered HTTP ${status}`);
          return;
        }
        const etag = res.headers.etag || null;
        const encoding = String(res.headers['content-encoding'] || '').toLowerCase();
        const body = encoding === 'gzip' ? res.pipe(zlib.createGunzip()) : res;
        const chunks = [];
        let size = 0;
        body.on('data', (chunk) => {
          size += chunk.length;
          if (size > MAX_SNAPSHOT_BYTES) {
            body.destroy(new Error('snapshot larger than 64 MB'));
            return;
          }
          chunks.push(chunk);
        });
        body.on('error', (error) => done(false, `snapshot body: ${error.message}`));
        res.on('aborted', () => done(false, 'snapshot body cut short'));
        body.on('end', () => {
          if (settled) return;
          let doc;
          try {
            doc = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            const held = this._document;
            if (
              held !== null &&
              this._installs !== installsAtStart &&
              doc !== null &&
              typeof doc === 'object' &&
              doc.version < held.version &&
              (doc.lineage || '') === (held.lineage || '')
            ) {
              // Overtaken: a patch installed a newer version while this answer was on its way.
              done(true);
              return;
            }
            this._install(doc, 'server');
          } catch (error) {
            this._reject('snapshot', error);
            // Another poll or stream event will try again; the last good snapshot stays.
            done(false);
            return;
          }
          this._etag = etag;
          done(true);
        });
      });
      req.on('socket', (socket) => socket.unref());
      req.on('error', (error) => done(false, `snapshot: ${error.code || error.message}`));
      const timer = setTimeout(() => {
        req.destroy(new Error(`no answer within ${this._timeoutMs} ms`));
      }, this._timeoutMs);
      timer.unref();
      this._snapshotReq = req;
    });
  }

  // --- internals: stream ---------------------------------------------------------------------

  _openStream() {
    if (this._closed || this._stopped || !this._base) return;
    this._streamTimer = null;
    const url = new URL(STREAM_PATH, this._base);
    const headers = {
      authorization: `Bearer ${this._sdkKey}`,
      accept: 'text/event-stream',
      'cache-control': 'no-cache',
      'user-agent': USER_AGENT,
    };
    // Event ids are snapshot versions: resume from the version held, so that the server
    // sends the patches since then (or a version event when it cannot).
    const resumeFrom = this._source === 'server' ? String(this._document.version) : null;
    if (resumeFrom !== null) headers['last-event-id'] = resumeFrom;
    let ended = false;
    let idle = null;
    const end = (problem, retryMs) => {
      if (ended) return;
      ended = true;
      clearTimeout(idle);
      if (this._streamReq === req) this._streamReq = null;
      const wasLive = this._streamLive;
      this._streamLive = false;
      req.destroy();
      if (this._closed || this._stopped) return;
      // While the stream is down, polling keeps the values fresh (say, behind a proxy that
      // does not pass event streams).
      if (wasLive || this._pollTimer === null) this._schedulePoll(this._pollIntervalMs);
      let delay;
      if (retryMs !== undefined) delay = retryMs;
      else if (problem) {
        this._streamFailures += 1;
        this._failed(problem);
        delay = this._backoff(this._streamFailures);
      } else {
        delay = this._streamRetryMs; // the server ended a healthy stream: reconnect as it asked
      }
      this._streamTimer = setTimeout(() => this._openStream(), delay);
      this._streamTimer.unref();
    };
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => end(`stream silent for ${this._streamIdleMs} ms`), this._streamIdleMs);
      idle.unref();
    };
    const req = (url.protocol === 'https:' ? https : http).get(url, { headers, agent: false }, (res) => {
      const status = res.statusCode;
      if (status !== 200) {
        res.resume();
        const wait = this._refused(status, res.headers, 'stream');
        if (status === 401 || status === 403) return end(null);
        return end(`stream answered HTTP ${status}`, wait);
      }
      this._streamFailures = 0;
      this._streamLive = true;
      this._cancelPoll();
      res.setEncoding('utf8');
      const parser = new SSEParser((event) => this._onEvent(event));
      armIdle();
      res.on('data', (text) => {
        armIdle();
        try {
          parser.push(text);
        } catch (error) {
          this._log.error(`stream event handling failed: ${error.message}`);
        }
        if (parser.retryMs !== null) this._streamRetryMs = parser.retryMs;
      });
      res.on('end', () => end(null));
      res.on('aborted', () => end('stream cut'));
      res.on('error', (error) => end(`stream: ${error.code || error.message}`));
      res.on('close', () => end(null));
    });
    req.on('socket', (socket) => socket.unref());
    req.on('error', (error) => end(`stream: ${error.code || error.message}`));
    req.setTimeout(this._timeoutMs, () => {
      if (!this._streamLive) req.destroy(new Error(`no answer within ${this._timeoutMs} ms`));
    });
    this._streamReq = req;
  }

  _onEvent(event) {
    if (event.id !== null) {
      this._lastEventId = event.id;
    }
    if (event.type !== 'version' && event.type !== 'patch') return;
    let data;
    try {
      data = JSON.parse(event.data);
    } catch (error) {
      this._reject(`${event.type} event`, error);
      this._refresh();
      return;
    }
    if (event.type === 'version') {
      this._recovered();
      this._refresh(); // conditional: a 304 when we already hold it
      return;
    }
    this._applyPatch(data);
  }

  _applyPatch(patch) {
    const current = this._document;
    const fits =
      patch !== null &&
      typeof patch === 'object' &&
      current !== null &&
      this._source === 'server' &&
      patch.previous_version === current.version &&
      (patch.environment === undefined || patch.environment === current.environment);
    if (!fits) {
      // A gap (or nothing to patch): the whole snapshot, conditionally.
      this._log.debug(`patch to ${patch && patch.version} does not follow ${current && current.version}; refetching`);
      this._refresh();
      return;
    }
    try {
      const flags = mergeSection(current.flags, patch.flags, 'patch.flags');
      const segments = patch.segments && Object.keys(patch.segments).length
        ? mergeSection(current.segments, patch.segments, 'patch.segments')
        : current.segments;
      const doc = { ...current, version: patch.version, flags, segments };
      if (!Number.isInteger(patch.version) || patch.version <= current.version) {
        throw new SnapshotError('patch.version', `${JSON.stringify(patch.version)} does not follow ${current.version}`);
      }
      this._install(doc, 'server', true);
    } catch (error) {
      this._reject('patch', error);
      this._refresh();
    }
  }

  // --- internals: polling, backoff, failures ---------------------------------------------------

  _schedulePoll(delay) {
    if (this._closed || this._stopped || !this._base) return;
    this._cancelPoll();
    this._pollTimer = setTimeout(() => {
      this._pollTimer = null;
      if (this._streamLive) return;
      this._refresh().then((ok) => {
        if (this._streamLive) return;
        this._pollFailures = ok ? 0 : this._pollFailures + 1;
        let delay = ok ? this._pollIntervalMs : Math.min(this._pollIntervalMs, this._backoff(this._pollFailures));
        if (!ok && this._retryAfterMs !== undefined) delay = Math.max(delay, this._retryAfterMs);
        this._retryAfterMs = undefined;
        this._schedulePoll(delay);
      });
    }, delay);
    this._pollTimer.unref();
  }

  _cancelPoll() {
    if (this._pollTimer !== null) {
      clearTimeout(this._pollTimer);
      this._pollTimer = null;
    }
  }

  /** Exponential backoff with jitter: half to all of initial * 2^(n-1), at most retryMaxMs. */
  _backoff(failures) {
    const ceiling = Math.min(this._retryMaxMs, this._retryInitialMs * 2 ** Math.min(failures - 1, 20));
    return Math.round(ceiling / 2 + Math.random() * (ceiling / 2));
  }

  /** Handles a non-2xx answer; returns the delay the server asked for (429/503), if any. */
  _refused(status, headers, what) {
    if (status === 401 || status === 403) {
      if (!this._stopped) {
        this._stopped = true;
        const message =
          `flagsvc refused the SDK key (HTTP ${status} on the ${what}): ` +
          (status === 401 ? 'the key is unknown or revoked' : 'the key may not read this environment') +
          '; use a live server SDK key. Stopped updating; serving ' +
          (this._document ? `version ${this._document.version} (${this._source})` : 'defaults') + '.';
        this._log.error(message);
        const error = new Error(message);
        error.status = status;
        this._emit('error', error);
        this._halt();
      }
      return undefined;
    }
    const retryAfter = Number(headers['retry-after']);
    if ((status === 429 || status === 503) && Number.isFinite(retryAfter) && retryAfter >= 0) {
      return Math.min(retryAfter * 1000, 10 * 60 * 1000) + Math.round(Math.random() * 1000);
    }
    return undefined;
  }

  _failed(problem) {
    if (!this._outage) {
      this._outage = true;
      this._log.warn(`flagsvc unreachable (${problem}); serving ${this._document ? `version ${this._document.version} (${this._source})` : 'defaults'} and retrying with backoff`);
    } else {
      this._log.debug(problem);
    }
  }

  _recovered() {
    if (this._outage) {
      this._outage = false;
      this._log.warn(`flagsvc reachable again (version ${this.version})`);
    }
  }

  _halt() {
    this._cancelPoll();
    if (this._streamTimer !== null) {
      clearTimeout(this._streamTimer);
      this._streamTimer = null;
    }
    if (this._streamReq !== null) {
      const req = this._streamReq;
      this._streamReq = null;
      req.destroy();
    }
    if (this._snapshotReq !== null) {
      const req = this._snapshotReq;
      this._snapshotReq = null;
      req.destroy();
    }
    for (const waiter of [...this._waiters]) waiter(this.ready);
  }
}

function mergeSection(base, changes, where) {
  if (changes === undefined || changes === null) return base;
  if (typeof changes !== 'object' || Array.isArray(changes)) throw new SnapshotError(where, 'must be an object');
  const merged = { ...base };
  for (const key of Object.keys(changes)) {
    if (changes[key] === null) delete merged[key];
    else merged[key] = changes[key];
  }
  return merged;
}

function positive(value, fallback) {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? value : fallback;
}

/** A client for one environment (the one the server SDK key is bound to). */
function createClient(options) {
  return new FlagsvcClient(options);
}

module.exports = { createClient, FlagsvcClient };
