// Acme ultrasonic bin sensor (a made-up device), ChirpStack style with Node's Buffer.
// fPort 1, 7 bytes: distance mm (u16 BE), battery mV (u16 BE), temperature 0.1 degC (i16 BE), flags (bit 0 tilt).
function decodeUplink(input) {
  if (input.fPort !== 1) return { errors: ["unknown fPort " + input.fPort] };
  if (input.bytes.length !== 7) return { errors: ["expected 7 bytes, got " + input.bytes.length] };
  var buf = Buffer.from(input.bytes);
  var flags = buf.readUInt8(6);
  var warnings = [];
  if (flags & 1) warnings.push("sensor tilted: the distance may be wrong");
  return {
    data: {
      distance_mm: buf.readUInt16BE(0),
      battery_mv: buf.readUInt16BE(2),
      temperature: buf.readInt16BE(4) / 10,
      tilted: (flags & 1) === 1,
    },
    warnings: warnings,
  };
}
