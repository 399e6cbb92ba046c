'use strict';
// The `matches` operator: RE2 syntax (what the server runs, through google-re2) executed by
// V8's linear-time regular expression engine (the RegExp `l` flag), so that no attribute can
// stall an evaluation, as on the server. Patterns are translated from RE2 to JavaScript
// syntax first; what RE2 would refuse, or what has no linear-time JavaScript equivalent,
// never matches (the server's engine does the same for a pattern RE2 refuses).
//
// Known differences from RE2, all documented in the README:
// - without the `u` flag (V8's linear engine does not take it), `.` and negated classes match
//   one UTF-16 code unit, so a character outside the Basic Multilingual Plane counts as two;
// - Unicode classes (\pL, \p{Greek}) and inline flag groups other than a leading (?i)/(?s)/(?m)
//   are not translated: such patterns never match;
// - (?i) folds case the JavaScript way (toUpperCase), RE2 by Unicode simple case folding.

const v8 = require('node:v8');

let linear = false;
try {
  v8.setFlagsFromString('--enable-experimental-regexp-engine');
  new RegExp('a', 'l'); // eslint-disable-line no-new
  linear = true;
} catch {
  linear = false;
}

const MAX_REPEAT = 1000; // RE2 refuses a larger counted repetition

const POSIX = {
  alnum: '0-9A-Za-z',
  alpha: 'A-Za-z',
  ascii: '\\x00-\\x7f',
  blank: '\\t ',
  cntrl: '\\x00-\\x1f\\x7f',
  digit: '0-9',
  graph: '!-~',
  lower: 'a-z',
  print: ' -~',
  punct: '!-\\/:-@\\[-`{-~',
  space: '\\t\\n\\v\\f\\r ',
  upper: 'A-Z',
  word: '0-9A-Za-z_',
  xdigit: '0-9A-Fa-f',
};

const SPACE = '\\t\\n\\f\\r ';

class Untranslatable extends Error {}

function escapeLiteral(text) {
  return text.replace(/[\\^$.*+?()[\]{}|/-]/g, '\\$&');
}

/**
 * Translates an RE2 pattern to [source, flags] for a JavaScript RegExp, or throws
 * Untranslatable.
 */
function translate(pattern) {
  let flags = '';
  let i = 0;
  const lead = /^\(\?([imsU]+)\)/.exec(pattern);
  if (lead) {
    if (lead[1].includes('U')) throw new Untranslatable('ungreedy mode');
    for (const f of new Set(lead[1])) flags += f;
    i = lead[0].length;
  }
  const dotAll = flags.includes('s');
  const multiline = flags.includes('m');
  // V8's linear engine has no `i` flag: (?i) becomes explicit case alternatives.
  const fold = flags.includes('i');
  flags = flags.replace('i', '');
  let out = '';
  const n = pattern.length;
  while (i < n) {
    const c = pattern[i];
    if (c === '\\') {
      const [piece, next] = escape(pattern, i, false, multiline);
      out += piece;
      i = next;
    } else if (c === '[') {
      const [piece, next] = charClass(pattern, i, fold);
      out += piece;
      i = next;
    } else if (c === '(') {
      if (pattern[i + 1] === '?') {
        if (pattern.startsWith('(?:', i)) {
          out += '(?:';
          i += 3;
        } else if (pattern.startsWith('(?P<', i) || pattern.startsWith('(?<', i)) {
          const close = pattern.indexOf('>', i);
          if (close < 0) throw new Untranslatable('unterminated group name');
          out += '(';
          i = close + 1;
        } else {
          throw new Untranslatable('group flags, lookarounds');
        }
      } else {
        out += '(';
        i += 1;
      }
    } else if (c === '.') {
      out += dotAll ? '[\\s\\S]' : '[^\\n]';
      i += 1;
    } else if (c === '{') {
      const m = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(i));
      if (m) {
        if (Number(m[1]) > MAX_REPEAT || (m[3] && Number(m[3]) > MAX_REPEAT)) {
          throw new Untranslatable('repetition count above 1000');
        }
        out += m[0];
        i += m[0].length;
      } else {
        out += '\\{'; // RE2 takes a brace that starts no repetition literally
        i += 1;
      }
    } else if (c === '}') {
      out += '\\}';
      i += 1;
    } else if (c === '/') {
      out += '\\/';
      i += 1;
    } else {
      out += fold ? foldChar(c) : c;
      i += 1;
    }
  }
  return [out, flags];
}

/** One escape outside or inside a class: [javascript, next index]. */
function escape(pattern, i, inClass, multiline) {
  const d = pattern[i + 1];
  if (d === undefined) throw new Untranslatable('trailing backslash');
  switch (d) {
    case 'A':
      if (inClass || multiline) throw new Untranslatable('\\A');
      return ['^', i + 2];
    case 'z':
      if (inClass || multiline) throw new Untranslatable('\\z');
      return ['$', i + 2];
    case 's':
      return [inClass ? SPACE : `[${SPACE}]`, i + 2];
    case 'S':
      if (inClass) throw new Untranslatable('\\S in a class');
      return [`[^${SPACE}]`, i + 2];
    case 'Q': {
      const end = pattern.indexOf('\\E', i + 2);
      const literal = end < 0 ? pattern.slice(i + 2) : pattern.slice(i + 2, end);
      return [escapeLiteral(literal), end < 0 ? pattern.length : end + 2];
    }
    case 'E':
      return ['', i + 2];
    case 'd':
    case 'D':
    case 'w':
    case 'W':
    case 'n':
    case 't':
    case 'r':
    case 'f':
    case 'v':
      return ['\\' + d, i + 2];
    case 'b':
    case 'B':
      if (inClass) throw new Untranslatable('\\b in a class');
      return ['\\' + d, i + 2];
    case 'a':
      return ['\\x07', i + 2];
    case 'x': {
      const braced = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(pattern.slice(i));
      if (braced) {
        const code = parseInt(braced[1], 16);
        if (code > 0xffff) throw new Untranslatable('astral \\x{...}');
        return ['\\u' + code.toString(16).padStart(4, '0'), i + braced[0].length];
      }
      const two = /^\\x[0-9A-Fa-f]{2}/.exec(pattern.slice(i));
      if (!two) throw new Untranslatable('bad \\x escape');
      return [two[0], i + 4];
    }
    default:
      if (/[0-9]/.test(d)) {
        if (d === '0') {
          const octal = /^\\0[0-7]{0,2}/.exec(pattern.slice(i))[0];
          const code = parseInt(octal.slice(1) || '0', 8);
          return ['\\x' + code.toString(16).padStart(2, '0'), i + octal.length];
        }
        throw new Untranslatable('backreference');
      }
      if (/[A-Za-z]/.test(d)) throw new Untranslatable(`\\${d}`);
      // An escaped punctuation character is itself.
      return ['\\' + d, i + 2];
  }
}

function otherCase(c) {
  const upper = c.toUpperCase();
  const lower = c.toLowerCase();
  if (upper !== c && upper.length === 1) return upper;
  if (lower !== c && lower.length === 1) return lower;
  return null;
}

function foldChar(c) {
  const other = otherCase(c);
  return other === null ? c : `[${c}${other}]`;
}

/** The other case of a class member or range (`a-f` -> `A-F`), for (?i). */
function foldMember(text) {
  if (text.length === 1) {
    const other = otherCase(text);
    return other === null ? text : text + other;
  }
  if (/^[a-z]-[a-z]$/.test(text) || /^[A-Z]-[A-Z]$/.test(text)) {
    return `${text}${otherCase(text[0])}-${otherCase(text[2])}`;
  }
  if (text.length === 3 && text[1] === '-') {
    // A mixed range: the ASCII letters inside it in both cases.
    let extra = '';
    for (let code = text.charCodeAt(0); code <= text.charCodeAt(2) && code < 128; code++) {
      const ch = String.fromCharCode(code);
      const other = otherCase(ch);
      if (other !== null) extra += other;
    }
    return text + escapeLiteral(extra);
  }
  return text;
}

/** A bracket expression from `[`: [javascript, next index]. */
function charClass(pattern, i, fold) {
  let out = '[';
  let j = i + 1;
  if (pattern[j] === '^') {
    out += '^';
    j += 1;
  }
  if (pattern[j] === ']') {
    out += '\\]';
    j += 1;
  }
  while (j < pattern.length && pattern[j] !== ']') {
    const c = pattern[j];
    if (c === '[' && pattern[j + 1] === ':') {
      const m = /^\[:(\^?)([a-z]+):\]/.exec(pattern.slice(j));
      if (!m || !(m[2] in POSIX)) throw new Untranslatable('POSIX class');
      if (m[1]) throw new Untranslatable('negated POSIX class');
      out += POSIX[m[2]];
      j += m[0].length;
    } else if (c === '\\') {
      const [piece, next] = escape(pattern, j, true, false);
      out += piece;
      j = next;
    } else if (c === '[') {
      out += '\\[';
      j += 1;
    } else if (fold && pattern[j + 1] === '-' && pattern[j + 2] !== undefined && pattern[j + 2] !== ']' && pattern[j + 2] !== '\\') {
      out += foldMember(pattern.slice(j, j + 3));
      j += 3;
    } else {
      out += fold ? foldMember(c) : c;
      j += 1;
    }
  }
  if (j >= pattern.length) throw new Untranslatable('unterminated class');
  return [out + ']', j + 1];
}

const MAX_REGEX_INPUT = 4096; // code points; a longer attribute never matches (as the server)

function codePointLength(text) {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < text.length) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

const NEVER = () => false;

/**
 * A predicate testing whether `pattern` (RE2 syntax) occurs in a string attribute; a pattern
 * that cannot run in linear time in JavaScript never matches.
 */
function compilePattern(pattern) {
  let regex;
  try {
    const [source, flags] = translate(pattern);
    regex = new RegExp(source, linear ? flags + 'l' : flags);
  } catch {
    return NEVER;
  }
  return (attr) =>
    typeof attr === 'string' &&
    (attr.length <= MAX_REGEX_INPUT || codePointLength(attr) <= MAX_REGEX_INPUT) &&
    regex.test(attr);
}

module.exports = { compilePattern, translate, linearRegExp: linear, Untranslatable };
