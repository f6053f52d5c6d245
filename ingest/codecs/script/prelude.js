// The project's runtime around a payload codec script, evaluated in a fresh engine before the script.
//
// It provides a small Node-style Buffer (scripts written for ChirpStack use it) and the batch runner
// __stadtpuls_run: one call decodes a chunk of payloads with the loop here, inside the engine, and returns the
// results as one JSON text: each payload's data (null where it failed), the failures and the warnings.
(function (global) {
  "use strict";

  // --- Buffer: the part of Node's Buffer that payload codecs use -----------------------------------------
  function outOfRange(buf, offset, width) {
    throw new RangeError(`The value of "offset" is out of range. It must be >= 0 and <= ${buf.length - width}. Received ${offset}`);
  }

  class Buffer extends Uint8Array {
    static from(value, encoding) {
      if (typeof value === "string") return Buffer._fromString(value, encoding);
      return new Buffer(value);  // an ArrayBuffer is shared; an array is copied, each value modulo 256
    }
    static _fromString(text, encoding) {
      const enc = (encoding || "utf8").toLowerCase();
      let bytes;
      if (enc === "hex") {
        const n = text.length >> 1;
        bytes = new Buffer(n);
        for (let i = 0; i < n; i++) {
          const v = parseInt(text.substr(2 * i, 2), 16);
          if (Number.isNaN(v)) return bytes.subarray(0, i);
          bytes[i] = v;
        }
        return bytes;
      }
      if (enc === "base64") {
        const bin = atob(text.replace(/-/g, "+").replace(/_/g, "/").replace(/[^A-Za-z0-9+/]/g, ""));
        bytes = new Buffer(bin.length);
        for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
        return bytes;
      }
      if (enc === "ascii" || enc === "latin1" || enc === "binary") {
        bytes = new Buffer(text.length);
        for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i) & 0xff;
        return bytes;
      }
      const utf8 = unescape(encodeURIComponent(text));
      bytes = new Buffer(utf8.length);
      for (let i = 0; i < utf8.length; i++) bytes[i] = utf8.charCodeAt(i);
      return bytes;
    }
    static alloc(size, fill) {
      const out = new Buffer(size);
      if (fill !== undefined) out.fill(fill);
      return out;
    }
    static isBuffer(value) {
      return value instanceof Buffer;
    }
    static concat(list, total) {
      const size = total === undefined ? list.reduce((s, b) => s + b.length, 0) : total;
      const out = new Buffer(size);
      let pos = 0;
      for (const b of list) {
        for (let i = 0; i < b.length && pos < size; i++) out[pos++] = b[i];
      }
      return out;
    }
    // offset checks are inlined: these are called for every field of every payload
    readUInt8(o = 0) { if (!(o >= 0 && o < this.length) || o % 1) outOfRange(this, o, 1); return this[o]; }
    readInt8(o = 0) { const v = this.readUInt8(o); return v & 0x80 ? v - 0x100 : v; }
    readUInt16BE(o = 0) { if (!(o >= 0 && o + 2 <= this.length) || o % 1) outOfRange(this, o, 2); return (this[o] << 8) | this[o + 1]; }
    readUInt16LE(o = 0) { if (!(o >= 0 && o + 2 <= this.length) || o % 1) outOfRange(this, o, 2); return this[o] | (this[o + 1] << 8); }
    readInt16BE(o = 0) { const v = this.readUInt16BE(o); return v & 0x8000 ? v - 0x10000 : v; }
    readInt16LE(o = 0) { const v = this.readUInt16LE(o); return v & 0x8000 ? v - 0x10000 : v; }
    readUInt32BE(o = 0) { return this.readInt32BE(o) >>> 0; }
    readUInt32LE(o = 0) { return this.readInt32LE(o) >>> 0; }
    readInt32BE(o = 0) { if (!(o >= 0 && o + 4 <= this.length) || o % 1) outOfRange(this, o, 4); return (this[o] << 24) | (this[o + 1] << 16) | (this[o + 2] << 8) | this[o + 3]; }
    readInt32LE(o = 0) { if (!(o >= 0 && o + 4 <= this.length) || o % 1) outOfRange(this, o, 4); return (this[o + 3] << 24) | (this[o + 2] << 16) | (this[o + 1] << 8) | this[o]; }
    readUIntBE(o, w) { if (!(o >= 0 && o + w <= this.length) || o % 1) outOfRange(this, o, w); let v = 0; for (let i = 0; i < w; i++) v = v * 256 + this[o + i]; return v; }
    readUIntLE(o, w) { if (!(o >= 0 && o + w <= this.length) || o % 1) outOfRange(this, o, w); let v = 0; for (let i = w - 1; i >= 0; i--) v = v * 256 + this[o + i]; return v; }
    readIntBE(o, w) { const v = this.readUIntBE(o, w); const top = 2 ** (8 * w - 1); return v >= top ? v - 2 * top : v; }
    readIntLE(o, w) { const v = this.readUIntLE(o, w); const top = 2 ** (8 * w - 1); return v >= top ? v - 2 * top : v; }
    _view(o = 0, w) { if (!(o >= 0 && o + w <= this.length) || o % 1) outOfRange(this, o, w); return new DataView(this.buffer, this.byteOffset + o, w); }
    readFloatBE(o) { return this._view(o, 4).getFloat32(0, false); }
    readFloatLE(o) { return this._view(o, 4).getFloat32(0, true); }
    readDoubleBE(o) { return this._view(o, 8).getFloat64(0, false); }
    readDoubleLE(o) { return this._view(o, 8).getFloat64(0, true); }
    toString(encoding, start, end) {
      const part = this.subarray(start || 0, end === undefined ? this.length : end);
      const enc = (encoding || "utf8").toLowerCase();
      let s = "";
      if (enc === "hex") {
        for (let i = 0; i < part.length; i++) s += (part[i] < 16 ? "0" : "") + part[i].toString(16);
        return s;
      }
      for (let i = 0; i < part.length; i++) s += String.fromCharCode(part[i]);
      if (enc === "base64") return btoa(s);
      if (enc === "ascii" || enc === "latin1" || enc === "binary") return s;
      try {
        return decodeURIComponent(escape(s));
      } catch (e) {
        return s;
      }
    }
    toJSON() {
      return { type: "Buffer", data: Array.from(this) };
    }
    equals(other) {
      if (other.length !== this.length) return false;
      for (let i = 0; i < this.length; i++) if (other[i] !== this[i]) return false;
      return true;
    }
  }
  for (const name of Object.getOwnPropertyNames(Buffer.prototype)) {
    if (name.startsWith("readUInt")) Buffer.prototype["readUint" + name.slice(8)] = Buffer.prototype[name];
  }
  global.Buffer = Buffer;

  // --- the batch runner ---------------------------------------------------------------------------------
  const VARIABLES = Object.freeze({});

  class Input {
    #time;
    constructor(bytes, fPort, time) {
      this.bytes = bytes;
      this.fPort = fPort;
      this.variables = VARIABLES;
      this.#time = time;
    }
    get recvTime() {
      return new Date(this.#time);
    }
  }

  // an error or warning as text the database can store (well-formed Unicode, no NUL)
  function message(e) {
    let text;
    if (e instanceof Error) text = e.name === "Error" && e.message ? e.message : e.message ? `${e.name}: ${e.message}` : e.name;
    else {
      try {
        text = typeof e === "string" ? e : JSON.stringify(e) || String(e);
      } catch (_) {
        text = String(e);
      }
    }
    return String(text).toWellFormed().replace(/\u0000/g, "");
  }

  function isRecord(v) {
    return v !== null && typeof v === "object" && !Array.isArray(v);
  }

  // The contract: decodeUplink(input) -> {data, warnings?, errors?}; older scripts: Decoder(bytes, port) -> data.
  // Returns the data object; errors are thrown as Fail, warnings pushed to `warned` with the payload's index.
  class Fail {
    constructor(text) {
      this.text = text;
    }
  }
  const warned = [];

  function entry(kind, i, bytes, fPort, time) {
    let data;
    if (kind === 1) {
      const r = decodeUplink(new Input(bytes, fPort, time));
      if (!isRecord(r)) throw new Fail("decodeUplink returned no object");
      const errors = r.errors;
      if (errors !== undefined && errors !== null && !(Array.isArray(errors) && errors.length === 0)) {
        throw new Fail(Array.isArray(errors) ? errors.map(message).join("; ") : message(errors));
      }
      data = r.data;
      const warnings = r.warnings;
      if (Array.isArray(warnings) && warnings.length) warned.push(i, warnings.map(message));
    } else {
      data = Decoder(bytes, fPort);
    }
    if (!isRecord(data)) throw new Fail(data === undefined ? "decoder returned no data" : "decoder data is not an object");
    return data;
  }

  // JSON.stringify escapes exactly the lone surrogates and control characters: text the database cannot store
  // as jsonb (lone surrogates, NUL) is the script's error, not the database's.
  const stringify = JSON.stringify;
  const LONE_SURROGATE = /(?:^|[^\\])(?:\\\\)*\\ud[89a-f]/i;
  const NUL = /(?:^|[^\\])(?:\\\\)*\\u0000/;
  function unstorable(text) {
    if (LONE_SURROGATE.test(text)) throw new Fail("decoder data holds text that is not Unicode (a lone surrogate)");
    if (NUL.test(text)) throw new Fail("decoder data holds a NUL character");
  }

  const done = [];
  const failed = [];

  // payloads: the chunk's payloads back to back, one character per byte; meta: JSON [lengths, fPorts, times ms].
  // Returns JSON items `[data or null per payload], [i, error, ...], [i, [warnings], ...]` (no outer brackets).
  function run(kind, payloads, meta) {
    const [lens, ports, times] = JSON.parse(meta);
    done.length = 0;
    failed.length = 0;
    warned.length = 0;
    let pos = 0;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i];
      const bytes = new Array(len);
      for (let k = 0; k < len; k++) bytes[k] = payloads.charCodeAt(pos + k);
      pos += len;
      let text;
      try {
        text = stringify(entry(kind, i, bytes, ports[i], times[i]));
        if (text.indexOf("\\u") !== -1) unstorable(text);
      } catch (e) {
        failed.push(i, e instanceof Fail ? e.text : message(e));
        if (warned.length && warned[warned.length - 2] === i) warned.length -= 2;
        text = "null";
      }
      done.push(text);
    }
    return result();
  }

  // the results so far: after an interrupted run, those of the payloads finished before it
  function result() {
    const text = stringify([0, failed, warned]);
    // a flat string: the binding does not take concatenated (rope) strings
    return ["[", done.join(","), "]", text.slice(2, -1)].join("");
  }

  Object.defineProperty(global, "__stadtpuls_run", { value: run });
  Object.defineProperty(global, "__stadtpuls_partial", { value: result });
})(globalThis);

// No timers, clocks beyond Date, or shared memory: remove what the engine offers beyond the language.
for (const name of ["performance", "queueMicrotask", "SharedArrayBuffer", "Atomics", "WeakRef", "FinalizationRegistry"]) {
  delete globalThis[name];
}
