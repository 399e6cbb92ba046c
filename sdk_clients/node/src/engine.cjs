'use strict';
// The evaluation engine (design §3), the JavaScript twin of the server's flags/engine.py:
// a snapshot document in, results out; no I/O. A snapshot is checked and compiled once
// (compileSnapshot throws SnapshotError for a malformed one, so a caller can keep its last
// good engine); evaluation then does no parsing and allocates nothing it does not return:
// results are built once per flag and shared (treat them and their values as read-only).

const { prefixState, murmur3After } = require('./murmur.cjs');
const { compilePattern } = require('./regex.cjs');
const { compareSemverText, scanDatetime, moment, INVALID } = require('./scan.cjs');

const Reason = Object.freeze({
  STATIC: 'STATIC',
  TARGETING_MATCH: 'TARGETING_MATCH',
  SPLIT: 'SPLIT',
  DISABLED: 'DISABLED',
  DEFAULT: 'DEFAULT',
  ERROR: 'ERROR',
  PREREQUISITE_FAILED: 'PREREQUISITE_FAILED',
});

const ErrorCode = Object.freeze({
  FLAG_NOT_FOUND: 'FLAG_NOT_FOUND',
  PARSE_ERROR: 'PARSE_ERROR',
  TYPE_MISMATCH: 'TYPE_MISMATCH',
  TARGETING_KEY_MISSING: 'TARGETING_KEY_MISSING',
  INVALID_CONTEXT: 'INVALID_CONTEXT',
  PROVIDER_NOT_READY: 'PROVIDER_NOT_READY',
  GENERAL: 'GENERAL',
});

const KEY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,99}$/;
const VARIANT_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const FLAG_TYPES = new Set(['boolean', 'string', 'number', 'json']);
const MAX_SPLIT_TOTAL = 1000000;
const MAX_PREREQUISITE_DEPTH = 16;
const DEFAULT_BUCKET_BY = 'targetingKey';
const TWO_32 = 4294967296;

class SnapshotError extends Error {
  constructor(where, message) {
    super(`${where}: ${message}`);
    this.name = 'SnapshotError';
  }
}

function result(value, variant, reason, errorCode, errorMessage) {
  return Object.freeze({
    value,
    variant,
    reason,
    errorCode: errorCode === undefined ? null : errorCode,
    errorMessage: errorMessage === undefined ? null : errorMessage,
  });
}

function deepFreeze(value) {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const key of Object.keys(value)) deepFreeze(value[key]);
  }
  return value;
}

// --- value helpers ----------------------------------------------------------------------

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number';

/** JSON equality of scalars: booleans never equal numbers; strings and numbers by value. */
function same(a, b) {
  return a === b && typeof a !== 'object';
}

/** Python's repr() of a non-integral finite float: JavaScript's shortest digits, its layout. */
function pythonFloat(x) {
  const abs = Math.abs(x);
  if (abs >= 1e-4 && abs < 1e16) return String(x);
  const [mantissa, exponent] = x.toExponential().split('e');
  const sign = exponent[0] === '-' ? '-' : '+';
  const digits = exponent.replace(/^[+-]/, '').padStart(2, '0');
  return `${mantissa}e${sign}${digits}`;
}

/** The bucketing unit as a string (as the server's unit_string), or null. */
function unitString(value) {
  switch (typeof value) {
    case 'string':
      return value === '' ? null : value;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) return null;
      if (Number.isInteger(value)) {
        return Math.abs(value) < 1e21 ? String(value === 0 ? 0 : value) : BigInt(value).toString();
      }
      return pythonFloat(value);
    case 'bigint':
      return value.toString();
    default:
      return null;
  }
}

const PROTO_NAMES = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Reads `attribute` from the context as the server does; undefined when missing or null. */
function makeLookup(attribute) {
  const guarded = PROTO_NAMES.has(attribute) || attribute === '__proto__';
  const parts = attribute.includes('.') ? attribute.split('.') : null;
  const walk = (ctx) => {
    let value = ctx;
    for (let i = 0; i < parts.length; i++) {
      if (!isObject(value)) return undefined;
      const part = parts[i];
      value = Object.prototype.hasOwnProperty.call(value, part) ? value[part] : undefined;
      if (value === undefined) return undefined;
    }
    return value === null ? undefined : value;
  };
  if (guarded) {
    return (ctx) => {
      const value = Object.prototype.hasOwnProperty.call(ctx, attribute) ? ctx[attribute] : undefined;
      if (value === undefined) return parts ? walk(ctx) : undefined;
      return value === null ? undefined : value;
    };
  }
  if (parts) {
    return (ctx) => {
      const value = ctx[attribute];
      if (value === undefined) return walk(ctx);
      return value === null ? undefined : value;
    };
  }
  return (ctx) => {
    const value = ctx[attribute];
    return value === null ? undefined : value;
  };
}

// --- semver and dates ---------------------------------------------------------------------

const SEMVER =
  /^v?(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?(?:-((?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9][0-9]*|[0-9]*[A-Za-z-][0-9A-Za-z-]*))*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;
const DIGITS = /^[0-9]+$/;

/** Compares two canonical decimal strings (no leading zeros) of any length. */
function compareDigits(a, b) {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A comparable form of a SemVer 2.0 string ("v" prefix and missing parts allowed), or null. */
function parseSemver(text) {
  if (typeof text !== 'string') return null;
  const m = SEMVER.exec(text);
  if (m === null) return null;
  return {
    core: [m[1], m[2] || '0', m[3] || '0'],
    pre: m[4] === undefined ? null : m[4].split('.'),
  };
}

function compareSemver(a, b) {
  for (let i = 0; i < 3; i++) {
    const c = compareDigits(a.core[i], b.core[i]);
    if (c !== 0) return c;
  }
  if (a.pre === null || b.pre === null) {
    if (a.pre === b.pre) return 0;
    return a.pre === null ? 1 : -1; // a release sorts after its pre-releases
  }
  const n = Math.min(a.pre.length, b.pre.length);
  for (let i = 0; i < n; i++) {
    const x = a.pre[i];
    const y = b.pre[i];
    const xn = DIGITS.test(x);
    const yn = DIGITS.test(y);
    if (xn && yn) {
      const c = compareDigits(x.replace(/^0+(?=.)/, ''), y.replace(/^0+(?=.)/, ''));
      if (c !== 0) return c;
    } else if (xn !== yn) {
      return xn ? -1 : 1; // numeric identifiers sort before alphanumeric ones
    } else if (x !== y) {
      return x < y ? -1 : 1;
    }
  }
  return a.pre.length === b.pre.length ? 0 : a.pre.length < b.pre.length ? -1 : 1;
}

const ISO =
  /^([0-9]{4})-([0-9]{2})-([0-9]{2})(?:[T ]([0-9]{2}):([0-9]{2})(?::([0-9]{2})(?:\.([0-9]{1,9}))?)?)?(Z|[+-][0-9]{2}:[0-9]{2})?$/;
const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** An instant as [seconds since the epoch, microseconds] from ISO-8601 (no zone: UTC), or null. */
function parseDatetime(text) {
  if (typeof text !== 'string') return null;
  const m = ISO.exec(text);
  if (m === null) return null;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4] || 0);
  const minute = Number(m[5] || 0);
  const second = Number(m[6] || 0);
  const micros = Number((m[7] || '0').slice(0, 6).padEnd(6, '0'));
  if (year < 1 || month < 1 || month > 12 || day < 1) return null;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1])) return null;
  if (hour > 23 || minute > 59 || second > 59) return null;
  let offset = 0;
  const zone = m[8];
  if (zone && zone !== 'Z') {
    offset = Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60;
    if (offset >= 86400) return null;
    if (zone[0] === '-') offset = -offset;
  }
  const seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
  return [seconds - offset, micros];
}

// --- operators ------------------------------------------------------------------------------
// Each builder checks its operand (a malformed one throws: the snapshot is rejected whole) and
// returns a predicate on a present (not missing, not null) attribute value.

const asList = (operand) => (Array.isArray(operand) ? operand : [operand]);

function scalarOperand(operand, where) {
  if (operand === null || typeof operand === 'object') {
    throw new SnapshotError(where, 'needs a string, number or boolean');
  }
  return operand;
}

function scalarList(operand, where) {
  if (!Array.isArray(operand)) throw new SnapshotError(where, 'needs a list');
  for (const v of operand) scalarOperand(v, where);
  return operand;
}

function stringList(operand, where) {
  const items = asList(operand);
  if (!items.length || !items.every((v) => typeof v === 'string')) {
    throw new SnapshotError(where, 'needs a string or a list of strings');
  }
  return items;
}

function numberOperand(operand, where) {
  if (!isNumber(operand) || !Number.isFinite(operand)) {
    throw new SnapshotError(where, 'needs a finite number');
  }
  return operand;
}

function inPredicate(operand, where) {
  const values = scalarList(operand, where);
  const strings = new Set(values.filter((v) => typeof v === 'string'));
  const others = values.filter((v) => typeof v !== 'string');
  if (!others.length) return (attr) => typeof attr === 'string' && strings.has(attr);
  return (attr) => {
    if (typeof attr === 'string') return strings.has(attr);
    for (let i = 0; i < others.length; i++) if (same(attr, others[i])) return true;
    return false;
  };
}

function semverOperator(test) {
  return (operand, where) => {
    const parsed = parseSemver(operand);
    if (parsed === null) throw new SnapshotError(where, `${JSON.stringify(operand)} is not a semantic version`);
    const target = {
      core: parsed.core.map((d) => d),
      pre: parsed.pre === null ? null : parsed.pre.map((id) => ({ numeric: DIGITS.test(id), text: id })),
    };
    return (attr) => {
      if (typeof attr !== 'string') return false;
      const order = compareSemverText(attr, target);
      return order !== INVALID && test(order);
    };
  };
}

function momentOperator(test) {
  return (operand, where) => {
    const target = parseDatetime(operand);
    if (target === null) throw new SnapshotError(where, `${JSON.stringify(operand)} is not an ISO-8601 date-time`);
    const [seconds, micros] = target;
    return (attr) => {
      if (typeof attr === 'string') {
        if (!scanDatetime(attr)) return false;
      } else if (attr instanceof Date) {
        const ms = attr.getTime();
        if (!Number.isFinite(ms)) return false;
        moment.seconds = Math.floor(ms / 1000);
        moment.micros = (ms - moment.seconds * 1000) * 1000;
      } else {
        return false;
      }
      const order = moment.seconds !== seconds ? (moment.seconds < seconds ? -1 : 1) : moment.micros === micros ? 0 : moment.micros < micros ? -1 : 1;
      return test(order);
    };
  };
}

const OPERATORS = {
  equals(operand, where) {
    const v = scalarOperand(operand, where);
    return (attr) => attr === v;
  },
  not_equals(operand, where) {
    const v = scalarOperand(operand, where);
    return (attr) => attr !== v;
  },
  in: inPredicate,
  not_in(operand, where) {
    const inside = inPredicate(operand, where);
    return (attr) => !inside(attr);
  },
  contains(operand, where) {
    const needles = asList(operand);
    if (!needles.length) throw new SnapshotError(where, 'needs a value or a list of values');
    for (const v of needles) scalarOperand(v, where);
    const strings = needles.filter((n) => typeof n === 'string');
    return (attr) => {
      if (typeof attr === 'string') {
        for (let i = 0; i < strings.length; i++) if (attr.includes(strings[i])) return true;
        return false;
      }
      if (Array.isArray(attr)) {
        for (const item of attr) for (const n of needles) if (same(item, n)) return true;
      }
      return false;
    };
  },
  starts_with(operand, where) {
    const prefixes = stringList(operand, where);
    return (attr) => {
      if (typeof attr !== 'string') return false;
      for (let i = 0; i < prefixes.length; i++) if (attr.startsWith(prefixes[i])) return true;
      return false;
    };
  },
  ends_with(operand, where) {
    const suffixes = stringList(operand, where);
    return (attr) => {
      if (typeof attr !== 'string') return false;
      for (let i = 0; i < suffixes.length; i++) if (attr.endsWith(suffixes[i])) return true;
      return false;
    };
  },
  matches(operand, where) {
    if (typeof operand !== 'string') throw new SnapshotError(where, 'needs a pattern string');
    return compilePattern(operand);
  },
  gt(operand, where) {
    const v = numberOperand(operand, where);
    return (attr) => typeof attr === 'number' && attr > v;
  },
  gte(operand, where) {
    const v = numberOperand(operand, where);
    return (attr) => typeof attr === 'number' && attr >= v;
  },
  lt(operand, where) {
    const v = numberOperand(operand, where);
    return (attr) => typeof attr === 'number' && attr < v;
  },
  lte(operand, where) {
    const v = numberOperand(operand, where);
    return (attr) => typeof attr === 'number' && attr <= v;
  },
  semver_eq: semverOperator((c) => c === 0),
  semver_gt: semverOperator((c) => c > 0),
  semver_gte: semverOperator((c) => c >= 0),
  semver_lt: semverOperator((c) => c < 0),
  semver_lte: semverOperator((c) => c <= 0),
  before: momentOperator((c) => c < 0),
  after: momentOperator((c) => c > 0),
};

const SEGMENT_OPERATORS = new Set(['in_segment', 'not_in_segment']);

// --- compiled forms ------------------------------------------------------------------------

function requireArray(value, where) {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new SnapshotError(where, 'must be a list');
  return value;
}

function requireObject(value, where) {
  if (!isObject(value)) throw new SnapshotError(where, 'must be an object');
  return value;
}

/** A condition as a function of the context. */
function compileCondition(doc, segments, where, allowSegments) {
  requireObject(doc, where);
  const operator = doc.operator;
  if (SEGMENT_OPERATORS.has(operator)) {
    const keys = asList(doc.value);
    if (!keys.every((k) => typeof k === 'string')) throw new SnapshotError(where, 'needs segment keys');
    // Segment rules see no segments (as the server): such a condition names none.
    const known = allowSegments ? segments : new Map();
    const members = keys.filter((k) => known.has(k)).map((k) => known.get(k));
    const inAny = (ctx) => {
      for (let i = 0; i < members.length; i++) if (members[i].contains(ctx)) return true;
      return false;
    };
    return operator === 'in_segment' ? inAny : (ctx) => !inAny(ctx);
  }
  const build = Object.prototype.hasOwnProperty.call(OPERATORS, operator) ? OPERATORS[operator] : undefined;
  if (build === undefined) throw new SnapshotError(where, `unknown operator ${JSON.stringify(operator)}`);
  if (typeof doc.attribute !== 'string') throw new SnapshotError(where, 'needs an attribute name');
  const predicate = build(doc.value, where);
  const lookup = makeLookup(doc.attribute);
  return (ctx) => {
    const value = lookup(ctx);
    return value !== undefined && predicate(value);
  };
}

function compileConditions(list, segments, where, allowSegments) {
  return requireArray(list, where).map((c, i) => compileCondition(c, segments, `${where}[${i}]`, allowSegments));
}

function allHold(conditions, ctx) {
  for (let i = 0; i < conditions.length; i++) if (!conditions[i](ctx)) return false;
  return true;
}

class Segment {
  constructor(doc, where) {
    requireObject(doc, where);
    const included = requireArray(doc.included, `${where}.included`);
    const excluded = requireArray(doc.excluded, `${where}.excluded`);
    this.included = new Set(included);
    this.excluded = new Set(excluded);
    this.rules = requireArray(doc.rules, `${where}.rules`).map((rule, i) => {
      requireObject(rule, `${where}.rules[${i}]`);
      return compileConditions(rule.conditions, null, `${where}.rules[${i}].conditions`, false);
    });
  }

  contains(ctx) {
    const key = ctx.targetingKey;
    if (typeof key === 'string') {
      if (this.excluded.has(key)) return false;
      if (this.included.has(key)) return true;
    }
    for (let i = 0; i < this.rules.length; i++) if (allHold(this.rules[i], ctx)) return true;
    return false;
  }
}

function variantName(name, variants, where) {
  if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(variants, name)) {
    throw new SnapshotError(where, `unknown variant ${JSON.stringify(name)}`);
  }
  return name;
}

/** A fixed variant or a weighted split, its results built once. */
class Serve {
  constructor(flagKey, hashPrefix, doc, variants, reason, results, where) {
    requireObject(doc, where);
    this.fixed = null;
    this.bucketBy = DEFAULT_BUCKET_BY;
    this.lookup = null;
    this.cumulative = [];
    this.results = [];
    this.total = 0;
    this.prefix = hashPrefix;
    if (!('split' in doc)) {
      const name = variantName(doc.variant, variants, `${where}.variant`);
      this.fixed = results(name, reason);
      return;
    }
    const split = doc.split;
    if (!Array.isArray(split) || !split.length) throw new SnapshotError(`${where}.split`, 'must be a non-empty list');
    if (doc.bucket_by !== undefined && doc.bucket_by !== null && typeof doc.bucket_by !== 'string') {
      throw new SnapshotError(`${where}.bucket_by`, 'must be a string');
    }
    this.bucketBy = doc.bucket_by || DEFAULT_BUCKET_BY;
    this.lookup = makeLookup(this.bucketBy);
    let running = 0;
    split.forEach((share, i) => {
      requireObject(share, `${where}.split[${i}]`);
      const weight = share.weight;
      if (!Number.isInteger(weight) || weight < 0 || weight > MAX_SPLIT_TOTAL) {
        throw new SnapshotError(`${where}.split[${i}].weight`, 'must be an integer from 0 to 1000000');
      }
      const name = variantName(share.variant, variants, `${where}.split[${i}].variant`);
      if (weight === 0) return;
      running += weight;
      this.cumulative.push(running);
      this.results.push(results(name, Reason.SPLIT));
    });
    if (running <= 0 || running > MAX_SPLIT_TOTAL) {
      throw new SnapshotError(`${where}.split`, 'weights must total 1 to 1000000');
    }
    this.total = running;
  }

  /** The served result, or null when a split has no unit to bucket. */
  pick(ctx) {
    if (this.fixed !== null) return this.fixed;
    const raw = ctx[this.bucketBy];
    const unit = typeof raw === 'string' ? raw : unitString(this.lookup(ctx));
    if (!unit) return null;
    const h = murmur3After(this.prefix, unit);
    const bucket = Math.floor((h * this.total) / TWO_32);
    const cumulative = this.cumulative;
    for (let i = 0; i < cumulative.length; i++) if (bucket < cumulative[i]) return this.results[i];
    return this.results[cumulative.length - 1];
  }
}

/** One flag prepared once per snapshot, so that evaluation does no parsing. */
class CompiledFlag {
  constructor(doc, segments, where) {
    requireObject(doc, where);
    const key = doc.key;
    if (typeof key !== 'string' || !KEY_PATTERN.test(key)) throw new SnapshotError(`${where}.key`, 'is not a flag key');
    const type = doc.type === undefined ? 'boolean' : doc.type;
    if (!FLAG_TYPES.has(type)) throw new SnapshotError(`${where}.type`, `unknown type ${JSON.stringify(type)}`);
    const variants = requireObject(doc.variants, `${where}.variants`);
    const names = Object.keys(variants);
    if (!names.length) throw new SnapshotError(`${where}.variants`, 'must name at least one variant');
    for (const name of names) {
      if (!VARIANT_PATTERN.test(name)) throw new SnapshotError(`${where}.variants`, `bad variant name ${JSON.stringify(name)}`);
      deepFreeze(variants[name]);
    }
    if (typeof doc.enabled !== 'boolean' && doc.enabled !== undefined) {
      throw new SnapshotError(`${where}.enabled`, 'must be a boolean');
    }
    this.key = key;
    this.type = type;
    const cache = new Map();
    const results = (name, reason) => {
      const id = `${reason}\u0000${name}`;
      let hit = cache.get(id);
      if (hit === undefined) {
        hit = result(variants[name], name, reason);
        cache.set(id, hit);
      }
      return hit;
    };
    const off = variantName(doc.off_variant, variants, `${where}.off_variant`);
    this.off = results(off, Reason.DISABLED);
    this.prerequisiteFailed = results(off, Reason.PREREQUISITE_FAILED);
    this.defaultFallback = results(off, Reason.DEFAULT);
    this.prerequisites = requireArray(doc.prerequisites, `${where}.prerequisites`).map((p, i) => {
      requireObject(p, `${where}.prerequisites[${i}]`);
      if (typeof p.flag !== 'string' || typeof p.variant !== 'string') {
        throw new SnapshotError(`${where}.prerequisites[${i}]`, 'needs a flag key and a variant name');
      }
      return [p.flag, p.variant];
    });
    this.targets = new Map();
    requireArray(doc.targets, `${where}.targets`).forEach((target, i) => {
      requireObject(target, `${where}.targets[${i}]`);
      const hit = results(variantName(target.variant, variants, `${where}.targets[${i}].variant`), Reason.TARGETING_MATCH);
      for (const value of requireArray(target.values, `${where}.targets[${i}].values`)) {
        if (typeof value !== 'string') throw new SnapshotError(`${where}.targets[${i}].values`, 'must be strings');
        if (!this.targets.has(value)) this.targets.set(value, hit);
      }
    });
    const prefix = prefixState(key);
    this.rules = requireArray(doc.rules, `${where}.rules`).map((rule, i) => {
      const here = `${where}.rules[${i}]`;
      requireObject(rule, here);
      return {
        conditions: compileConditions(rule.conditions, segments, `${here}.conditions`, true),
        serve: new Serve(key, prefix, rule.serve, variants, Reason.TARGETING_MATCH, results, `${here}.serve`),
      };
    });
    const defaultReason = this.targets.size || this.rules.length ? Reason.DEFAULT : Reason.STATIC;
    this.defaultServe = new Serve(key, prefix, doc.default_serve, variants, defaultReason, results, `${where}.default_serve`);
    // Kill and disable win over everything; a plain fixed default needs no context.
    this.constant = null;
    if ((doc.kill !== null && doc.kill !== undefined && doc.kill !== false) || !doc.enabled) {
      this.constant = this.off;
    } else if (!this.prerequisites.length && !this.targets.size && !this.rules.length && this.defaultServe.fixed) {
      this.constant = this.defaultServe.fixed;
    }
  }

  evaluate(ctx, flags, depth) {
    if (this.constant !== null) return this.constant;
    const prerequisites = this.prerequisites;
    for (let i = 0; i < prerequisites.length; i++) {
      const prerequisite = flags.get(prerequisites[i][0]);
      if (prerequisite === undefined || depth >= MAX_PREREQUISITE_DEPTH) return this.prerequisiteFailed;
      if (prerequisite.evaluate(ctx, flags, depth + 1).variant !== prerequisites[i][1]) {
        return this.prerequisiteFailed;
      }
    }
    if (this.targets.size) {
      const key = ctx.targetingKey;
      if (typeof key === 'string') {
        const hit = this.targets.get(key);
        if (hit !== undefined) return hit;
      }
    }
    const rules = this.rules;
    for (let i = 0; i < rules.length; i++) {
      if (allHold(rules[i].conditions, ctx)) {
        const served = rules[i].serve.pick(ctx);
        if (served !== null) return served;
      }
    }
    const served = this.defaultServe.pick(ctx);
    return served !== null ? served : this.defaultFallback;
  }
}

const EMPTY = Object.freeze({});

/** The flags of one environment snapshot, compiled. */
class Engine {
  /**
   * @param flags   {key: flag document}
   * @param segments {key: segment document}
   * @param reuse   an engine whose compiled flags may be kept for documents that are the
   *                very same objects (a patch that changes no segment recompiles only its flags)
   */
  constructor(flags, segments, reuse) {
    requireObject(flags, 'flags');
    requireObject(segments, 'segments');
    this.segmentDocs = segments;
    this.flagDocs = flags;
    this.segments = new Map();
    const canReuse = reuse !== undefined && reuse !== null && reuse.segmentDocs === segments;
    if (canReuse) {
      this.segments = reuse.segments;
    } else {
      for (const key of Object.keys(segments)) {
        if (!KEY_PATTERN.test(key)) throw new SnapshotError(`segments.${key}`, 'is not a segment key');
        this.segments.set(key, new Segment(segments[key], `segments.${key}`));
      }
    }
    this.flags = new Map();
    for (const key of Object.keys(flags)) {
      const doc = flags[key];
      if (canReuse && reuse.flagDocs[key] === doc && reuse.flags.has(key)) {
        this.flags.set(key, reuse.flags.get(key));
        continue;
      }
      const flag = new CompiledFlag(doc, this.segments, `flags.${key}`);
      if (flag.key !== key) throw new SnapshotError(`flags.${key}.key`, `says ${JSON.stringify(flag.key)}`);
      this.flags.set(key, flag);
    }
  }

  static fromSnapshot(snapshot) {
    requireObject(snapshot, 'snapshot');
    return new Engine(snapshot.flags || {}, snapshot.segments || {});
  }

  /** The full result for one flag and context (design §3 step by step). */
  evaluate(flagKey, context, defaultValue) {
    const flag = this.flags.get(flagKey);
    if (flag === undefined) {
      return result(
        defaultValue === undefined ? null : defaultValue,
        null,
        Reason.ERROR,
        ErrorCode.FLAG_NOT_FOUND,
        `flag '${flagKey}' does not exist in this environment`,
      );
    }
    return flag.evaluate(context === undefined || context === null ? EMPTY : context, this.flags, 0);
  }

  /** The result for a known flag, or undefined for an unknown one (no allocation either way). */
  lookup(flagKey, context) {
    const flag = this.flags.get(flagKey);
    if (flag === undefined) return undefined;
    return flag.constant !== null ? flag.constant : flag.evaluate(context === undefined || context === null ? EMPTY : context, this.flags, 0);
  }

  has(flagKey) {
    return this.flags.has(flagKey);
  }

  typeOf(flagKey) {
    const flag = this.flags.get(flagKey);
    return flag === undefined ? undefined : flag.type;
  }

  keys() {
    return [...this.flags.keys()];
  }
}

module.exports = {
  Engine,
  SnapshotError,
  Reason,
  ErrorCode,
  result,
  unitString,
  parseSemver,
  compareSemver,
  parseDatetime,
  KEY_PATTERN,
};
