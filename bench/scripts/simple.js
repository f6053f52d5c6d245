// bench.codecs: a simple codec script, one field (an ultrasonic distance in mm, u16 big-endian).
function decodeUplink(input) {
  var b = input.bytes;
  return { data: { distance: (b[0] << 8) | b[1] } };
}
