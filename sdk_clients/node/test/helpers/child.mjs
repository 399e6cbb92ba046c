// Run as its own process by the tests: connects a client to flagsvc (stream open), evaluates,
// then closes it (or not, with CLOSE=0) and reports which sockets and timers remain.
import { createHook } from 'node:async_hooks';
import { createClient } from '../../src/index.mjs';

// Every TCP handle and timer, referenced or not: getActiveResourcesInfo() lists only those
// keeping the loop alive, and the client's are unref'd.
const live = new Map();
createHook({
  init(id, type) {
    if (type === 'TCPWRAP' || type === 'Timeout') live.set(id, type);
  },
  destroy(id) {
    live.delete(id);
  },
}).enable();
const count = (type) => [...live.values()].filter((t) => t === type).length;
const client = createClient({ url: process.env.FLAGSVC_URL, sdkKey: process.env.FLAGSVC_KEY, logger: null });
const ready = await client.waitForReady(15000);
await new Promise((resolve) => setTimeout(resolve, 300)); // the stream is open by now
const before = { sockets: count('TCPWRAP'), timers: count('Timeout'), keepingAlive: process.getActiveResourcesInfo() };
const value = client.isEnabled('new-checkout', { targetingKey: 'qa-alice' });
if (process.env.CLOSE !== '0') await client.close();
await new Promise((resolve) => setTimeout(resolve, 50)); // closed handles are destroyed by now
await new Promise((resolve) => setImmediate(resolve));
const after = { sockets: count('TCPWRAP'), timers: count('Timeout'), keepingAlive: process.getActiveResourcesInfo() };
console.log(JSON.stringify({ ready, value, before, after }));
