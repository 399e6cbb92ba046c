'use strict';
// A server-sent events parser (the WHATWG event stream format): text in, events out.

class SSEParser {
  /** @param onEvent ({type, data, id}) => void; id is null unless the event set one. */
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.type = '';
    this.data = [];
    this.id = null;
    this.retryMs = null;
    this.first = true;
  }

  push(text) {
    let buffer = this.buffer + text;
    if (this.first && buffer.length) {
      if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
      this.first = false;
    }
    let start = 0;
    for (;;) {
      let end = -1;
      let skip = 1;
      for (let i = start; i < buffer.length; i++) {
        const c = buffer.charCodeAt(i);
        if (c === 10) {
          end = i;
          break;
        }
        if (c === 13) {
          if (i + 1 >= buffer.length) break; // wait: a \n may follow
          end = i;
          if (buffer.charCodeAt(i + 1) === 10) skip = 2;
          break;
        }
      }
      if (end < 0) break;
      this.line(buffer.slice(start, end));
      start = end + skip;
    }
    this.buffer = buffer.slice(start);
  }

  line(line) {
    if (line === '') {
      this.dispatch();
      return;
    }
    if (line[0] === ':') return; // a comment (keep-alive)
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value[0] === ' ') value = value.slice(1);
    switch (field) {
      case 'event':
        this.type = value;
        break;
      case 'data':
        this.data.push(value);
        break;
      case 'id':
        if (!value.includes('\u0000')) this.id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) this.retryMs = Number(value);
        break;
      default:
        break;
    }
  }

  dispatch() {
    if (!this.data.length) {
      this.type = '';
      return;
    }
    const event = { type: this.type || 'message', data: this.data.join('\n'), id: this.id };
    this.type = '';
    this.data = [];
    this.onEvent(event);
  }
}

module.exports = { SSEParser };
