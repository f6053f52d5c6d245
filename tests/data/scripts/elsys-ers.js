// The project's own decoder for the Elsys ERS room sensor, written from the record layout that
// ingest/codecs/elsys.py implements: [type][value] records, big-endian values; a type outside the official
// decoder's table ends parsing, a known type this layout does not decode is an error, as is a truncated record.
var RECORDS = {
  1: { key: "temperature", width: 2, signed: true, scale: 10 },
  2: { key: "humidity", width: 1, signed: false, scale: 1 },
  4: { key: "light", width: 2, signed: false, scale: 1 },
  5: { key: "motion", width: 1, signed: false, scale: 1 },
  6: { key: "co2", width: 2, signed: false, scale: 1 },
  7: { key: "vdd", width: 2, signed: false, scale: 1 }
};

function hex2(v) {
  return (v < 16 ? "0x0" : "0x") + v.toString(16);
}

function decodeUplink(input) {
  var b = input.bytes;
  var data = {};
  var i = 0;
  while (i < b.length) {
    var t = b[i];
    var rec = RECORDS[t];
    if (!rec) {
      if (t >= 0x01 && t < 0x1d) return { errors: ["unsupported record type " + hex2(t)] };
      break;
    }
    if (i + 1 + rec.width > b.length) {
      return { errors: ["truncated record: type " + hex2(t) + " (" + rec.key + ") needs " + rec.width + " value byte" +
        (rec.width > 1 ? "s" : "")] };
    }
    var v = rec.width === 2 ? (b[i + 1] << 8) | b[i + 2] : b[i + 1];
    if (rec.signed && v & 0x8000) v -= 0x10000;
    data[rec.key] = rec.scale !== 1 ? v / rec.scale : v;
    i += 1 + rec.width;
  }
  return { data: data };
}
