// The project's own decoder for the Milesight VS133 people line counter, written from the record layout that
// ingest/codecs/milesight.py implements: for lines 1..4, totals in (channel 3+3k, type 0xd2, u32 LE), totals out
// (4+3k, 0xd2, u32 LE) and the period counts in and out (5+3k, 0xcc, two u16 LE); parsed like the EM310-UDL.
function decodeUplink(input) {
  var b = input.bytes;
  var data = {};
  var i = 0;
  while (i < b.length) {
    if (i + 2 > b.length) return { errors: ["truncated record header: 1 byte left where channel and type need 2"] };
    var channel = b[i], type = b[i + 1];
    var k = channel - 3, line = Math.floor(k / 3) + 1, which = k % 3;
    var known = k >= 0 && line <= 4 && ((which < 2 && type === 0xd2) || (which === 2 && type === 0xcc));
    if (!known) break;
    if (i + 6 > b.length) {
      var hex = function (v) { return (v < 16 ? "0x0" : "0x") + v.toString(16); };
      return { errors: ["truncated record: channel " + hex(channel) + " type " + hex(type) + " needs 4 value bytes"] };
    }
    var group = data["line_" + line] || (data["line_" + line] = {});
    if (which === 2) {
      group.period_in = b[i + 2] | (b[i + 3] << 8);
      group.period_out = b[i + 4] | (b[i + 5] << 8);
    } else {
      group[which === 0 ? "total_in" : "total_out"] = (b[i + 2] | (b[i + 3] << 8) | (b[i + 4] << 16) | (b[i + 5] << 24)) >>> 0;
    }
    i += 6;
  }
  return { data: data };
}
