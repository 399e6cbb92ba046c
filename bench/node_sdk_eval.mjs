// Evaluations per second of flagsvc's Node SDK beside unleash-client and @growthbook/growthbook,
// all measured in this one run (the same three cases as bench/python_sdk_eval.py).
//
//     cd bench && npm ci && node node_sdk_eval.mjs [--n 200000] [--repeat 7]
//
// Cases, each given to every SDK as the equivalent local definition (no network):
// (a) a boolean with no rules; (b) a 50% rollout by user id; (c) a flag with 3 attribute rules
// (country in a list; plan equals; app version >= 2.0.0 by semver), the contexts matching each
// rule or none in turn. Every SDK evaluates through its public call with the context of that
// evaluation (flagsvc `isEnabled(key, ctx)`, Unleash `isEnabled(key, ctx)`, GrowthBook
// `isOn`): nothing is cached across calls. GrowthBook gets the faster of its two server set-ups
// (GrowthBookClient with a user context per call, or one prepared scoped instance per user).
// The answers of the three SDKs are compared before timing.
//
// Targets: on every case at least 2x GrowthBook's rate and 5x unleash-client's.

import { createRequire } from 'node:module';
import { performance } from 'node:perf_hooks';
import { createClient } from '../sdk_clients/node/src/index.mjs';

const require = createRequire(import.meta.url);
const { Unleash, InMemStorageProvider } = require('unleash-client');
const { GrowthBookClient } = require('@growthbook/growthbook');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((pairs, arg, i, all) => (arg.startsWith('--') ? [...pairs, [arg.slice(2), all[i + 1]]] : pairs), []),
);
const N = Number(args.n || 200000);
const REPEAT = Number(args.repeat || 7);
const USERS = 1000;

// --- the same three flags for each SDK ---------------------------------------------------

function flagsvcFlag(key, extra = {}) {
  return {
    key, type: 'boolean', variants: { on: true, off: false }, off_variant: 'off', enabled: true, kill: null,
    targets: [], rules: [], default_serve: { variant: 'on' }, prerequisites: [], ...extra,
  };
}

const FLAGSVC = {
  'plain-boolean': flagsvcFlag('plain-boolean'),
  'half-rollout': flagsvcFlag('half-rollout', {
    default_serve: { split: [{ variant: 'on', weight: 5000 }, { variant: 'off', weight: 5000 }] },
  }),
  'three-rules': flagsvcFlag('three-rules', {
    default_serve: { variant: 'off' },
    rules: [
      { conditions: [{ attribute: 'country', operator: 'in', value: ['DE', 'AT'] }], serve: { variant: 'on' } },
      { conditions: [{ attribute: 'plan', operator: 'equals', value: 'enterprise' }], serve: { variant: 'on' } },
      { conditions: [{ attribute: 'app_version', operator: 'semver_gte', value: '2.0.0' }], serve: { variant: 'on' } },
    ],
  }),
};

// Unleash: strategies are ORed, constraints within one ANDed; flexibleRollout buckets userId.
const UNLEASH = [
  { name: 'plain-boolean', enabled: true, strategies: [{ name: 'default', parameters: {} }] },
  {
    name: 'half-rollout',
    enabled: true,
    strategies: [{ name: 'flexibleRollout', parameters: { rollout: '50', stickiness: 'userId', groupId: 'half' } }],
  },
  {
    name: 'three-rules',
    enabled: true,
    strategies: [
      { name: 'default', parameters: {}, constraints: [{ contextName: 'country', operator: 'IN', values: ['DE', 'AT'] }] },
      { name: 'default', parameters: {}, constraints: [{ contextName: 'plan', operator: 'IN', values: ['enterprise'] }] },
      // Unleash has no SEMVER_GTE: "> 1.9.99" is ">= 2.0.0" for these versions.
      { name: 'default', parameters: {}, constraints: [{ contextName: 'appVersion', operator: 'SEMVER_GT', value: '1.9.99' }] },
    ],
  },
];

// GrowthBook: rules are tried in order; a force rule with coverage is a percentage rollout.
const GROWTHBOOK = {
  'plain-boolean': { defaultValue: true },
  'half-rollout': { defaultValue: false, rules: [{ force: true, coverage: 0.5, hashAttribute: 'id' }] },
  'three-rules': {
    defaultValue: false,
    rules: [
      { condition: { country: { $in: ['DE', 'AT'] } }, force: true },
      { condition: { plan: 'enterprise' }, force: true },
      { condition: { app_version: { $vgte: '2.0.0' } }, force: true },
    ],
  },
};

const CASES = [
  ['(a) boolean, no rules', 'plain-boolean'],
  ['(b) 50% rollout by user id', 'half-rollout'],
  ['(c) 3 attribute rules', 'three-rules'],
];

// People: in turn matching rule 1, rule 2, rule 3, or none.
const people = Array.from({ length: USERS }, (_, i) => ({
  id: `user-${i}`,
  country: i % 4 === 0 ? 'DE' : 'US',
  plan: i % 4 === 1 ? 'enterprise' : 'free',
  app_version: i % 4 === 2 ? '2.1.0' : '1.4.2',
}));

// --- the SDKs ---------------------------------------------------------------------------------

function ours() {
  const client = createClient({
    bootstrap: { schema_version: 1, environment: 'bench', version: 1, flags: FLAGSVC, segments: {} },
    logger: null,
  });
  const contexts = people.map((p) => ({ targetingKey: p.id, country: p.country, plan: p.plan, app_version: p.app_version }));
  return {
    name: 'flagsvc',
    answer: (key, i) => client.isEnabled(key, contexts[i]),
    run(key, n) {
      let on = 0;
      for (let i = 0; i < n; i++) if (client.isEnabled(key, contexts[i % USERS])) on++;
      return on;
    },
  };
}

async function unleash() {
  const client = new Unleash({
    url: 'http://127.0.0.1:9/api/', // never contacted: refreshInterval 0 fetches nothing, metrics are off
    appName: 'flagsvc-bench',
    refreshInterval: 0,
    disableMetrics: true,
    bootstrap: { data: UNLEASH },
    storageProvider: new InMemStorageProvider(),
  });
  client.on('error', () => {});
  client.on('warn', () => {});
  await new Promise((resolve) => client.once('ready', resolve));
  const contexts = people.map((p) => ({ userId: p.id, appVersion: p.app_version, properties: { country: p.country, plan: p.plan } }));
  return {
    name: 'unleash-client',
    client,
    answer: (key, i) => client.isEnabled(key, contexts[i]),
    run(key, n) {
      let on = 0;
      for (let i = 0; i < n; i++) if (client.isEnabled(key, contexts[i % USERS])) on++;
      return on;
    },
  };
}

function growthbook() {
  const gb = new GrowthBookClient({}).initSync({ payload: { features: GROWTHBOOK } });
  const users = people.map((p) => ({ attributes: { ...p } }));
  const scoped = users.map((u) => gb.createScopedInstance(u));
  const perCall = {
    run(key, n) {
      let on = 0;
      for (let i = 0; i < n; i++) if (gb.isOn(key, users[i % USERS])) on++;
      return on;
    },
  };
  const perUser = {
    run(key, n) {
      let on = 0;
      for (let i = 0; i < n; i++) if (scoped[i % USERS].isOn(key)) on++;
      return on;
    },
  };
  return { name: 'growthbook', answer: (key, i) => gb.isOn(key, users[i]), perCall, perUser, gb };
}

// --- timing -------------------------------------------------------------------------------------

function rate(run, key) {
  run(key, Math.min(N, 50000)); // warm up (JIT)
  let best = Infinity;
  for (let r = 0; r < REPEAT; r++) {
    const started = performance.now();
    run(key, N);
    best = Math.min(best, performance.now() - started);
  }
  return (N / best) * 1000;
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(0)} k`).padStart(10);

async function main() {
  const sdks = [ours(), await unleash(), growthbook()];
  // The same answers, user by user, before anything is timed.
  for (const [, key] of CASES) {
    const reference = people.map((_, i) => sdks[1].answer(key, i));
    const shares = sdks.map((sdk) => people.filter((_, i) => sdk.answer(key, i)).length / USERS);
    for (const sdk of sdks) {
      const same = people.filter((_, i) => sdk.answer(key, i) === reference[i]).length;
      // Rollouts hash differently in each SDK: there the share of users on is compared.
      if (key !== 'half-rollout' && same !== USERS) throw new Error(`${sdk.name} disagrees on ${key} for ${USERS - same} users`);
    }
    if (key === 'half-rollout' && shares.some((s) => Math.abs(s - 0.5) > 0.05)) throw new Error(`rollout shares ${shares}`);
  }
  console.log(`node ${process.version}, ${N.toLocaleString('en')} evaluations per run, best of ${REPEAT}; ${USERS} users, contexts given per call`);
  console.log('answers agree: (a) all on, (b) ~50% on in each SDK, (c) the same users on in each SDK\n');
  const header = `${'case'.padEnd(28)} ${'flagsvc/s'.padStart(10)} ${'unleash/s'.padStart(10)} ${'growthbook/s'.padStart(12)}  ${'vs unleash'.padStart(10)} ${'vs growthbook'.padStart(13)}  targets (5x, 2x)`;
  console.log(header);
  console.log('-'.repeat(header.length));
  let allMet = true;
  for (const [label, key] of CASES) {
    const flagsvc = rate(sdks[0].run, key);
    const unl = rate(sdks[1].run, key);
    const gbCall = rate(sdks[2].perCall.run, key);
    const gbUser = rate(sdks[2].perUser.run, key);
    const gb = Math.max(gbCall, gbUser);
    const xu = flagsvc / unl;
    const xg = flagsvc / gb;
    const met = xu >= 5 && xg >= 2;
    allMet &&= met;
    console.log(
      `${label.padEnd(28)} ${fmt(flagsvc)} ${fmt(unl)} ${fmt(gb).padStart(12)}  ${`${xu.toFixed(1)}x`.padStart(10)} ${`${xg.toFixed(1)}x`.padStart(13)}  ${met ? 'met' : 'NOT MET'}` +
        `   (growthbook ${gbCall >= gbUser ? 'client per call' : 'scoped per user'}; the other ${fmt(Math.min(gbCall, gbUser)).trim()}/s)`,
    );
  }
  console.log(`\ntargets ${allMet ? 'met on every case' : 'NOT met on every case'}`);
  sdks[1].client.destroy();
  sdks[2].gb.destroy();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
