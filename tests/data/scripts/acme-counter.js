// Acme door counter (a made-up device) with the older Decoder(bytes, port) entry point.
// 4 bytes: people in (u16 LE), people out (u16 LE) since the last report.
function Decoder(bytes, port) {
  return { counts: { "in": bytes[0] | (bytes[1] << 8), out: bytes[2] | (bytes[3] << 8) }, port: port };
}
