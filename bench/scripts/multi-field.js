// bench.codecs: a multi-field codec script in the ChirpStack style, 12 bytes on fPort 2:
// temperature 0.01 degC (i16 BE), humidity 0.5 %RH (u8), battery mV (u16 BE), status bits (u8: door open,
// tamper, low battery), people in and out (u16 LE each), light level (u16 BE, lux); other fPorts are errors.
function decodeUplink(input) {
  if (input.fPort !== 2) return { errors: ["unknown fPort " + input.fPort] };
  var b = Buffer.from(input.bytes);
  if (b.length !== 12) return { errors: ["expected 12 bytes, got " + b.length] };
  var status = b.readUInt8(5);
  var data = {
    temperature: b.readInt16BE(0) / 100,
    humidity: b.readUInt8(2) / 2,
    battery: b.readUInt16BE(3) / 1000,
    door: status & 1 ? "open" : "closed",
    tamper: (status & 2) !== 0,
    people: { in: b.readUInt16LE(6), out: b.readUInt16LE(8) },
    light: b.readUInt16BE(10),
  };
  var warnings = status & 4 ? ["battery low"] : [];
  return { data: data, warnings: warnings };
}
