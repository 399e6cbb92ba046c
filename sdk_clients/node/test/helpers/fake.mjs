// A tiny local stand-in for flagsvc's SDK edge (snapshot with ETag/gzip, SSE stream), for the
// protocol cases a real server does not produce on demand (a patch with a gap, malformed data).
import http from 'node:http';
import zlib from 'node:zlib';

export function flag(key, { enabled = true, kill = null, serve = 'on', rules = [] } = {}) {
  return {
    key, type: 'boolean', variants: { on: true, off: false }, off_variant: 'off', enabled, kill,
    targets: [], rules, default_serve: { variant: serve }, prerequisites: [],
  };
}

export function snapshotDoc(version, flags, segments = {}) {
  return { schema_version: 1, environment: 'production', version, lineage: 'l1', revision: `r${version}`, flags, segments };
}

export async function startFake({ key = 'good-key' } = {}) {
  const state = {
    doc: null,
    rawBody: null, // overrides the snapshot body (malformed cases)
    snapshotRequests: [],
    streamRequests: [],
    streams: new Set(),
    status: 200,
    refused: 0, // requests answered 401
    delayMs: 0, // answer snapshots this late
  };
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${key}`) {
      state.refused += 1;
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end('{"error":{"code":"unauthenticated","message":"Unknown token; use a live key."}}');
      return;
    }
    if (req.url === '/api/v1/sdk/snapshot/') {
      state.snapshotRequests.push({ headers: req.headers });
      if (state.status !== 200) {
        res.writeHead(state.status, { 'retry-after': '0' });
        res.end();
        return;
      }
      const gzip = /gzip/.test(req.headers['accept-encoding'] || '');
      const etag = `"production:${state.doc.version}-${state.doc.revision}${gzip ? ':gzip' : ''}"`;
      if (req.headers['if-none-match'] === etag) {
        res.writeHead(304, { etag });
        res.end();
        return;
      }
      const body = Buffer.from(state.rawBody ?? JSON.stringify(state.doc));
      if (state.delayMs) {
        const delayed = { body, gzip, etag };
        setTimeout(() => {
          const headers = { 'content-type': 'application/json', etag: delayed.etag };
          if (delayed.gzip) headers['content-encoding'] = 'gzip';
          res.writeHead(200, headers);
          res.end(delayed.gzip ? zlib.gzipSync(delayed.body) : delayed.body);
        }, state.delayMs);
        return;
      }
      const headers = { 'content-type': 'application/json', etag };
      if (gzip) headers['content-encoding'] = 'gzip';
      res.writeHead(200, headers);
      res.end(gzip ? zlib.gzipSync(body) : body);
      return;
    }
    if (req.url === '/api/v1/sdk/stream/') {
      state.streamRequests.push({ headers: req.headers });
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      res.write('retry: 100\n\n');
      res.write(event('version', state.doc.version, { environment: 'production', version: state.doc.version }));
      state.streams.add(res);
      req.on('close', () => state.streams.delete(res));
      return;
    }
    res.writeHead(404);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    state,
    send(text) {
      for (const res of state.streams) res.write(text);
    },
    endStreams() {
      for (const res of state.streams) res.end();
    },
    async close() {
      if (!server.listening) return;
      for (const res of state.streams) res.destroy();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

export function event(type, id, data) {
  return `id: ${id}\nevent: ${type}\ndata: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

export async function until(predicate, timeoutMs = 5000, what = 'condition') {
  const started = Date.now();
  while (!predicate()) {
    if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return Date.now() - started;
}

export function recordingLogger() {
  const lines = { debug: [], info: [], warn: [], error: [] };
  return {
    lines,
    debug: (...a) => lines.debug.push(a.join(' ')),
    info: (...a) => lines.info.push(a.join(' ')),
    warn: (...a) => lines.warn.push(a.join(' ')),
    error: (...a) => lines.error.push(a.join(' ')),
  };
}
