// The project's own decoder for the Milesight EM310-UDL bin level sensor, written from the record layout that
// ingest/codecs/milesight.py implements: [channel][type][value] records, unsigned little-endian values, parsed
// from the first byte; an unknown record ends parsing, a truncated one is an error.
var RECORDS = {
  "1,117": { size: 1, name: "battery" },
  "3,130": { size: 2, name: "distance" },
  "4,0": { size: 1, name: "tilt" }
};

function decodeUplink(input) {
  var b = input.bytes;
  var data = {};
  var i = 0;
  while (i < b.length) {
    if (i + 2 > b.length) return { errors: ["truncated record header: 1 byte left where channel and type need 2"] };
    var rec = RECORDS[b[i] + "," + b[i + 1]];
    if (!rec) break;
    if (i + 2 + rec.size > b.length) {
      var hex = function (v) { return (v < 16 ? "0x0" : "0x") + v.toString(16); };
      return { errors: ["truncated record: channel " + hex(b[i]) + " type " + hex(b[i + 1]) + " needs " + rec.size +
        " value byte" + (rec.size > 1 ? "s" : "")] };
    }
    var v = rec.size === 2 ? b[i + 2] | (b[i + 3] << 8) : b[i + 2];
    data[rec.name] = rec.name === "tilt" ? (v ? "tilt" : "normal") : v;
    i += 2 + rec.size;
  }
  return { data: data };
}
