'use strict';
// Attribute parsing that allocates nothing, for the per-evaluation side of the semver and
// date operators (the operand side is parsed once, when the flag is compiled). Each function
// accepts exactly what the engine's regular expressions accept (engine.cjs SEMVER and ISO).

const INVALID = -2;

const isDigit = (c) => c >= 48 && c <= 57;
const isAlnumHyphen = (c) => isDigit(c) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 45;

/** Compares text[from, to) (a canonical decimal) with the decimal string `digits`. */
function compareDecimal(text, from, to, digits) {
  const n = to - from;
  if (n !== digits.length) return n < digits.length ? -1 : 1;
  for (let i = 0; i < n; i++) {
    const a = text.charCodeAt(from + i);
    const b = digits.charCodeAt(i);
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** The end of a numeric core field at `i` (0 or [1-9][0-9]*), or -1. */
function numberEnd(text, i) {
  const n = text.length;
  if (i >= n || !isDigit(text.charCodeAt(i))) return -1;
  if (text.charCodeAt(i) === 48) return i + 1;
  let j = i + 1;
  while (j < n && isDigit(text.charCodeAt(j))) j++;
  return j;
}

/**
 * Compares the SemVer string `text` with a compiled target ({core: [3 decimal strings],
 * pre: null | [{numeric, text}]}): -1, 0 or 1, or INVALID when `text` is not a version.
 */
function compareSemverText(text, target) {
  const n = text.length;
  let i = 0;
  if (i < n && text.charCodeAt(i) === 118) i++; // v
  let order = 0;
  let field = 0;
  for (; field < 3; field++) {
    if (field > 0) {
      if (i >= n || text.charCodeAt(i) !== 46 || !isDigit(text.charCodeAt(i + 1))) break;
      i++;
    }
    const end = numberEnd(text, i);
    if (end < 0) return INVALID;
    if (order === 0) order = compareDecimal(text, i, end, target.core[field]);
    i = end;
  }
  for (; field < 3; field++) if (order === 0) order = compareDecimal('0', 0, 1, target.core[field]);
  // Pre-release identifiers.
  let hasPre = false;
  let index = 0;
  let preOrder = 0;
  if (i < n && text.charCodeAt(i) === 45) {
    hasPre = true;
    i++;
    for (;;) {
      const start = i;
      let letters = false;
      while (i < n && isAlnumHyphen(text.charCodeAt(i))) {
        if (!isDigit(text.charCodeAt(i))) letters = true;
        i++;
      }
      if (i === start) return INVALID;
      if (!letters && text.charCodeAt(start) === 48 && i - start > 1) return INVALID; // leading zero
      if (preOrder === 0 && target.pre !== null) {
        if (index >= target.pre.length) preOrder = 1;
        else {
          const other = target.pre[index];
          if (!letters && other.numeric) preOrder = compareDecimal(text, start, i, other.text);
          else if (letters !== !other.numeric) preOrder = letters ? 1 : -1;
          else preOrder = compareText(text, start, i, other.text);
        }
      }
      index++;
      if (i < n && text.charCodeAt(i) === 46) {
        i++;
        continue;
      }
      break;
    }
    if (preOrder === 0 && target.pre !== null && index < target.pre.length) preOrder = -1;
  }
  // Build metadata: checked, ignored.
  if (i < n && text.charCodeAt(i) === 43) {
    i++;
    for (;;) {
      const start = i;
      while (i < n && isAlnumHyphen(text.charCodeAt(i))) i++;
      if (i === start) return INVALID;
      if (i < n && text.charCodeAt(i) === 46) {
        i++;
        continue;
      }
      break;
    }
  }
  if (i !== n) return INVALID;
  if (order !== 0) return order;
  if (!hasPre || target.pre === null) {
    if (hasPre === (target.pre !== null)) return 0;
    return hasPre ? -1 : 1; // a release sorts after its pre-releases
  }
  return preOrder;
}

function compareText(text, from, to, other) {
  const n = Math.min(to - from, other.length);
  for (let k = 0; k < n; k++) {
    const a = text.charCodeAt(from + k);
    const b = other.charCodeAt(k);
    if (a !== b) return a < b ? -1 : 1;
  }
  const la = to - from;
  return la === other.length ? 0 : la < other.length ? -1 : 1;
}

// --- ISO-8601 date-times ------------------------------------------------------------------

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(text, at, count) {
  let value = 0;
  for (let k = 0; k < count; k++) {
    const c = text.charCodeAt(at + k);
    if (!isDigit(c)) return -1;
    value = value * 10 + (c - 48);
  }
  return value;
}

function daysFromCivil(y, m, d) {
  y -= m <= 2 ? 1 : 0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m + (m > 2 ? -3 : 9)) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

// The instant scanDatetime read last (module state: nothing is allocated per call).
const moment = { seconds: 0, micros: 0 };

/** Reads an ISO-8601 date-time (no zone: UTC) into `moment`; false when it is not one. */
function scanDatetime(text) {
  const n = text.length;
  if (n < 10 || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45) return false;
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  if (year < 1 || month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1])) return false;
  let i = 10;
  let hour = 0;
  let minute = 0;
  let second = 0;
  let micros = 0;
  const sep = i < n ? text.charCodeAt(i) : 0;
  if (sep === 84 || sep === 32) {
    // T or space, then HH:MM[:SS[.fraction]]
    if (i + 6 > n || text.charCodeAt(i + 3) !== 58) return false;
    hour = digits(text, i + 1, 2);
    minute = digits(text, i + 4, 2);
    if (hour < 0 || minute < 0) return false;
    i += 6;
    if (i < n && text.charCodeAt(i) === 58) {
      second = digits(text, i + 1, 2);
      if (second < 0 || i + 3 > n) return false;
      i += 3;
      if (i < n && text.charCodeAt(i) === 46) {
        i++;
        const start = i;
        while (i < n && isDigit(text.charCodeAt(i))) {
          if (i - start < 6) micros = micros * 10 + (text.charCodeAt(i) - 48);
          i++;
        }
        const count = i - start;
        if (count < 1 || count > 9) return false;
        for (let k = count; k < 6; k++) micros *= 10;
      }
    }
  }
  if (hour > 23 || minute > 59 || second > 59) return false;
  let offset = 0;
  if (i < n) {
    const z = text.charCodeAt(i);
    if (z === 90 && i + 1 === n) {
      i++;
    } else if ((z === 43 || z === 45) && i + 6 === n && text.charCodeAt(i + 3) === 58) {
      const oh = digits(text, i + 1, 2);
      const om = digits(text, i + 4, 2);
      if (oh < 0 || om < 0) return false;
      offset = oh * 3600 + om * 60;
      if (offset >= 86400) return false;
      if (z === 45) offset = -offset;
      i += 6;
    } else {
      return false;
    }
  }
  moment.seconds = daysFromCivil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset;
  moment.micros = micros;
  return true;
}

module.exports = { compareSemverText, scanDatetime, moment, INVALID };
