// The project's own decoder for the Bosch TPS110 parking sensor, written from the byte layout that
// ingest/codecs/bosch.py implements (fPort 1 status, 2 heartbeat, 3 startup, 4/5 raw, 6 debug). It exists to
// check the vectorised codec against a script decoder on arbitrary payloads.
var MIN_LENGTH = { 1: 1, 2: 1, 3: 17, 4: 0, 5: 0, 6: 10 };
var TYPES = { 1: "parking status", 2: "heartbeat", 3: "startup", 4: "device information", 5: "device usage", 6: "debug" };
var RESET_CAUSES = { 1: "watchdog", 2: "power on", 3: "system request", 4: "other" };

function decodeUplink(input) {
  var b = input.bytes;
  var port = input.fPort;
  if (!(port in MIN_LENGTH)) return { data: {} };
  if (b.length < MIN_LENGTH[port]) {
    return { errors: ["wrong length: " + b.length + " bytes, expected at least " + MIN_LENGTH[port]] };
  }
  var data = { type: TYPES[port] };
  if (port === 1 || port === 2) {
    data.occupied = (b[0] & 1) === 1;
    if (port === 2 && b.length >= 2) data.temperature = b[1] & 0x80 ? b[1] - 256 : b[1];
  } else if (port === 3) {
    var codes = [];
    for (var i = 0; i < 12; i += 4) {
      var code = ((b[i + 1] & 0x0f) << 8) | b[i];
      if (code) codes.push(code);
    }
    data.debugCodes = codes;
    data.firmwareVersion = b[12] + "." + b[13] + "." + b[14];
    if (b[15] in RESET_CAUSES) data.resetCause = RESET_CAUSES[b[15]];
    data.occupied = (b[16] & 1) === 1;
  } else if (port === 4 || port === 5) {
    data.bytes = b.slice();
  } else {
    data.timestamp = b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24);
    data.debugCode = ((b[5] & 0x0f) << 8) | b[4];
    data.sequenceNumber = b[8] | (b[9] << 8);
  }
  return { data: data };
}
