'use strict';
// MurmurHash3 x86 32-bit, seed 0, over the UTF-8 bytes of a JavaScript string (design §3).
// Splits hash `flagKey + unit`; the flag key's whole 4-byte blocks are hashed once when the
// flag is compiled (prefixState), so an evaluation only hashes the key's last 0-3 bytes and
// the unit. No allocation: the bytes go through one module-level scratch buffer.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

let scratch = new Uint8Array(256);

/** Writes the UTF-8 bytes of `text` into scratch at `at`; returns the end offset. */
function writeUtf8(text, at) {
  const n = text.length;
  if (scratch.length < at + n * 3) {
    const bigger = new Uint8Array(Math.max(scratch.length * 2, at + n * 3));
    bigger.set(scratch.subarray(0, at));
    scratch = bigger;
  }
  const buf = scratch;
  for (let i = 0; i < n; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      buf[at++] = c;
    } else if (c < 0x800) {
      buf[at++] = 0xc0 | (c >> 6);
      buf[at++] = 0x80 | (c & 63);
    } else if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const low = text.charCodeAt(i + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
        i++;
        buf[at++] = 0xf0 | (c >> 18);
        buf[at++] = 0x80 | ((c >> 12) & 63);
        buf[at++] = 0x80 | ((c >> 6) & 63);
        buf[at++] = 0x80 | (c & 63);
      } else {
        // A lone surrogate: U+FFFD, as TextEncoder writes it.
        buf[at++] = 0xef;
        buf[at++] = 0xbf;
        buf[at++] = 0xbd;
      }
    } else if (c >= 0xd800 && c <= 0xdfff) {
      buf[at++] = 0xef;
      buf[at++] = 0xbf;
      buf[at++] = 0xbd;
    } else {
      buf[at++] = 0xe0 | (c >> 12);
      buf[at++] = 0x80 | ((c >> 6) & 63);
      buf[at++] = 0x80 | (c & 63);
    }
  }
  return at;
}

/** Mixes the whole blocks of scratch[from, to) into h; returns h. */
function blocks(h, from, to) {
  const buf = scratch;
  for (let i = from; i + 4 <= to; i += 4) {
    let k = buf[i] | (buf[i + 1] << 8) | (buf[i + 2] << 16) | (buf[i + 3] << 24);
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  return h;
}

function finish(h, from, to, length) {
  const buf = scratch;
  const tail = (to - from) & 3;
  const start = to - tail;
  let k = 0;
  if (tail === 3) k ^= buf[start + 2] << 16;
  if (tail >= 2) k ^= buf[start + 1] << 8;
  if (tail >= 1) {
    k ^= buf[start];
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 (seed 0) of the UTF-8 bytes of `text`, unsigned. */
function murmur3(text) {
  const end = writeUtf8(text, 0);
  return finish(blocks(0, 0, end), 0, end, end);
}

/** The hash state after the whole 4-byte blocks of `prefix`'s UTF-8 bytes. */
function prefixState(prefix) {
  const end = writeUtf8(prefix, 0);
  const whole = end & ~3;
  return {
    h: blocks(0, 0, whole),
    tail: Array.from(scratch.subarray(whole, end)),
    length: end,
  };
}

/** murmur3(prefix + text) from prefixState(prefix). */
function murmur3After(state, text) {
  const tail = state.tail;
  const t = tail.length;
  for (let i = 0; i < t; i++) scratch[i] = tail[i];
  const end = writeUtf8(text, t);
  return finish(blocks(state.h, 0, end), 0, end, state.length - t + end);
}

module.exports = { murmur3, prefixState, murmur3After };
