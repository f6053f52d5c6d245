// The project's own decoder for the Nwave NPS405 parking sensor, written from the byte layout that
// ingest/codecs/nwave.py implements (fPort 1 status, 2 heartbeat, 3 startup, 6 debug, 10 tag registration),
// in the ChirpStack style with Node's Buffer. It exists to check the vectorised codec against a script decoder.
var MIN_LENGTH = { 1: 1, 2: 3, 3: 5, 6: 0, 10: 5 };
var TYPES = { 1: "parking_status", 2: "heartbeat", 3: "startup", 6: "debug", 10: "user_registration" };
var RESET_CAUSES = {
  0: "rejoining_lorawan_network", 1: "watchdog", 2: "power_on", 3: "user_request", 6: "brownout", 7: "other"
};

// the previous state's duration, sent in 7 bits: minutes in steps of 1, 5 and 60 from 0, 90 and 120 on
function durations(data, b0) {
  var c = (b0 >> 1) & 0x7f;
  if (c < 90) {
    data.previous_state_duration = c;
    data.previous_state_duration_error = 0;
  } else if (c < 120) {
    data.previous_state_duration = 90 + (c - 90) * 5;
    data.previous_state_duration_error = 4;
  } else if (c < 127) {
    data.previous_state_duration = 240 + (c - 120) * 60;
    data.previous_state_duration_error = 59;
  } else {
    data.previous_state_duration = 660;
    data.previous_state_duration_error = null;
  }
  data.previous_state_duration_overflow = c === 127;
}

function decodeUplink(input) {
  var port = input.fPort;
  if (!(port in MIN_LENGTH)) return { data: {} };
  var buf = Buffer.from(input.bytes);
  if (buf.length < MIN_LENGTH[port]) {
    return { errors: ["wrong length: " + buf.length + " bytes, expected at least " + MIN_LENGTH[port]] };
  }
  var data = { type: TYPES[port] };
  var b0 = buf.length ? buf.readUInt8(0) : 0;
  if (port === 1) {
    data.occupied = (b0 & 1) === 1;
    durations(data, b0);
  } else if (port === 2) {
    data.occupied = (b0 & 1) === 1;
    data.hw_health_status = b0 & 0x7f;
    var mv = 2500 + 4 * buf.readUInt8(1);
    data.battery_voltage = mv / 1000;
    var temperature = buf.readInt8(2) / 2 + 10;
    data.temperature = temperature;
    var low = temperature >= -5 ? 3000 : 2900;
    var critical = temperature >= -5 ? 2900 : 2800;
    data.battery_health = mv >= low ? "normal" : mv >= critical ? "low" : "critical";
  } else if (port === 3) {
    data.firmware_version = buf.readUInt8(0) + "." + buf.readUInt8(1) + "." + buf.readUInt8(2);
    if (buf[3] in RESET_CAUSES) data.reset_cause = RESET_CAUSES[buf[3]];
    data.occupied = (buf[4] & 1) === 1;
  } else if (port === 6) {
    data.bytes = Array.from(buf);
  } else {
    if (b0 & 1) {
      data.occupied = true;
      durations(data, b0);
    } else {
      data.occupied = null;
      data.previous_state_duration = null;
      data.previous_state_duration_error = null;
      data.previous_state_duration_overflow = null;
    }
    var tag = buf.readInt32BE(1);
    data.tag_id = (tag < 0 ? "-" + (-tag).toString(16) : tag.toString(16)).toUpperCase();
  }
  return { data: data };
}
