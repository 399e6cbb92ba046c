// An Express service reading flagsvc flags: a middleware puts a per-request flag reader on
// `req`, and the checkout takes the legacy path whenever `new-checkout` is off (killed,
// disabled, outside the rollout, or flagsvc unreachable with no snapshot yet).
//
//     FLAGSVC_URL=http://127.0.0.1:8000 FLAGSVC_SERVER_KEY=fsv_server_... node examples/express-checkout.mjs
//     curl -H 'X-User-Id: qa-alice' -X POST localhost:3000/checkout
//
// Without FLAGSVC_URL it starts from examples/bootstrap.json alone (no network).
import express from 'express';
import { fileURLToPath } from 'node:url';
import { createClient } from '@flagsvc/node';

export function flagsMiddleware(flags) {
  return (req, _res, next) => {
    // The context of this request, built once; every read below is synchronous and local.
    const context = {
      targetingKey: req.get('x-user-id') || 'anonymous',
      country: req.get('x-country'),
      plan: req.get('x-plan'),
    };
    req.flags = {
      isEnabled: (key, fallback = false) => flags.isEnabled(key, context, fallback),
      getValue: (key, fallback) => flags.getValue(key, context, fallback),
      evaluate: (key, fallback) => flags.evaluate(key, context, fallback),
    };
    next();
  };
}

export function createApp(flags) {
  const app = express();
  app.use(flagsMiddleware(flags));
  app.post('/checkout', (req, res) => {
    if (!req.flags.isEnabled('new-checkout', false)) {
      res.json({ path: 'legacy', order: legacyCheckout(req) });
      return;
    }
    res.json({ path: 'new', order: newCheckout(req) });
  });
  app.get('/upload-limit', (req, res) => {
    res.json({ maxSizeMb: req.flags.getValue('upload.max-size-mb', 10) });
  });
  return app;
}

function legacyCheckout(req) {
  return { id: `legacy-${Date.now()}`, user: req.get('x-user-id') || 'anonymous' };
}

function newCheckout(req) {
  return { id: `v2-${Date.now()}`, user: req.get('x-user-id') || 'anonymous' };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const flags = createClient({
    url: process.env.FLAGSVC_URL, // unset: bootstrap only
    sdkKey: process.env.FLAGSVC_SERVER_KEY,
    bootstrap: fileURLToPath(new URL('./bootstrap.json', import.meta.url)),
    defaults: { 'new-checkout': false },
  });
  // Bounded: start serving after 2 s at most, with the bootstrap if flagsvc is not there yet.
  const fresh = await flags.waitForReady(2000);
  console.log(`flags from ${flags.source} (fresh: ${fresh}), version ${flags.version}`);
  flags.on('change', (keys) => console.log('flags changed:', keys.join(', ')));
  const server = createApp(flags).listen(Number(process.env.PORT || 3000), () => {
    console.log(`listening on http://127.0.0.1:${server.address().port}`);
  });
  process.on('SIGTERM', () => server.close(() => flags.close()));
}
