// Starts a real flagsvc for the tests: `python -m tests.sdk_server` from the repository root
// (production-shaped: PostgreSQL, Redis, the ASGI server; demo data; one key of each kind).
// FLAGSVC_PYTHON names the interpreter (default: the repository's .venv/bin/python);
// FLAGSVC_REDIS_DB the first of the two Redis databases it uses (default 4).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import readline from 'node:readline';

export const repoRoot = path.resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');

export async function startFlagsvc() {
  const python = process.env.FLAGSVC_PYTHON || path.join(repoRoot, '.venv/bin/python');
  const child = spawn(
    python,
    ['-m', 'tests.sdk_server', '--name', process.env.FLAGSVC_DB_NAME || 'node', '--redis-db', process.env.FLAGSVC_REDIS_DB || '4'],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  const stderr = [];
  child.stderr.on('data', (chunk) => {
    stderr.push(chunk);
    if (process.env.FLAGSVC_VERBOSE) process.stderr.write(chunk);
  });
  const lines = readline.createInterface({ input: child.stdout });
  const queue = [];
  const waiting = [];
  lines.on('line', (line) => (waiting.length ? waiting.shift()(line) : queue.push(line)));
  const exited = new Promise((resolve) => child.on('exit', resolve));
  const nextLine = (what, timeoutMs) =>
    new Promise((resolve, reject) => {
      if (queue.length) return resolve(queue.shift());
      const timer = setTimeout(() => reject(new Error(`flagsvc: no ${what} within ${timeoutMs} ms\n${Buffer.concat(stderr).toString().slice(-4000)}`)), timeoutMs);
      exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`flagsvc exited (${code}) before ${what}\n${Buffer.concat(stderr).toString().slice(-4000)}`));
      });
      waiting.push((line) => {
        clearTimeout(timer);
        resolve(line);
      });
    });
  const config = JSON.parse(await nextLine('start-up line', 120000));
  const command = async (line, expected) => {
    child.stdin.write(`${line}\n`);
    const answer = JSON.parse(await nextLine(line, 60000));
    if (answer.web !== expected) throw new Error(`flagsvc answered ${JSON.stringify(answer)} to ${line}`);
  };
  const api = async (method, route, token, body) => {
    const res = await fetch(new URL(route, config.url), {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${route}: HTTP ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  };
  return {
    ...config,
    stopWeb: () => command('--stop-web', 'stopped'),
    startWeb: () => command('--start-web', 'started'),
    kill: (flag, reason = 'node sdk test') =>
      api('POST', `/api/v1/flags/${flag}/kill/`, config.killKey, { environment: config.environment, reason }),
    restore: (flag, reason = 'node sdk test') =>
      api('POST', `/api/v1/flags/${flag}/restore/`, config.killKey, { environment: config.environment, reason }),
    setEnabled: (flag, enabled, reason = 'node sdk test') =>
      api('PATCH', `/api/v1/flags/${flag}/environments/${config.environment}/`, config.adminToken, { enabled, reason }),
    snapshot: () => api('GET', '/api/v1/sdk/snapshot/', config.serverKey),
    async stop() {
      child.stdin.end();
      const timer = setTimeout(() => child.kill('SIGTERM'), 30000);
      await exited;
      clearTimeout(timer);
    },
  };
}
