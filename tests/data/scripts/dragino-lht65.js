// The project's own decoder for the Dragino LHT65 temperature and humidity sensor, written from the byte
// layout that ingest/codecs/dragino.py implements: fPort 2, 11 bytes; Ext (byte 6, low nibble) selects the
// external sensor and what bytes 7..10 hold. It exists to check the vectorised codec against a script decoder.
var EXT_SENSOR = { 0: "No external sensor", 1: "Temperature Sensor" };
var WORK_MODE = {
  4: "Interrupt Sensor send", 5: "Illumination Sensor", 6: "ADC Sensor", 7: "Interrupt Sensor count",
  8: "Interrupt Sensor count", 9: "DS18B20 & timestamp", 15: "DS18B20ID"
};

function s16(b, i) {
  var v = (b[i] << 8) | b[i + 1];
  return v & 0x8000 ? v - 0x10000 : v;
}
function u16(b, i) {
  return (b[i] << 8) | b[i + 1];
}
function s32(b, i) {
  return (b[i] << 24) | (b[i + 1] << 16) | (b[i + 2] << 8) | b[i + 3];
}
function hex2(v) {
  return (v < 16 ? "0" : "") + v.toString(16);
}

function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 2) return { errors: ["unknown FPort"] };
  if (b.length !== 11) return { errors: ["wrong length: " + b.length + " bytes, expected 11"] };
  if (b[6] & 0x40) return { errors: ["poll message reply: the decoder returns no data"] };
  var ext = b[6] & 0x0f;
  var data = {};
  if (ext === 9) {
    data.TempC_DS = s16(b, 0) / 100;
    data.Bat_status = b[4] >> 6;
  } else {
    data.BatV = (u16(b, 0) & 0x3fff) / 1000;
    data.Bat_status = b[0] >> 6;
  }
  if (ext !== 15) {
    data.TempC_SHT = s16(b, 2) / 100;
    data.Hum_SHT = (u16(b, 4) & 0x0fff) / 10;
  }
  if (b[6] & 0x80) data.No_connect = "Sensor no connection";
  if (ext in EXT_SENSOR) data.Ext_sensor = EXT_SENSOR[ext];
  if (ext === 1) data.TempC_DS = s16(b, 7) / 100;
  if (ext in WORK_MODE) data.Work_mode = WORK_MODE[ext];
  if (ext === 4) {
    data.Exti_pin_level = b[7] ? "High" : "Low";
    data.Exti_status = b[8] ? "True" : "False";
  } else if (ext === 5) {
    data.ILL_lx = u16(b, 7);
  } else if (ext === 6) {
    data.ADC_V = u16(b, 7) / 1000;
  } else if (ext === 7) {
    data.Exit_count = u16(b, 7);
  } else if (ext === 8) {
    data.Exit_count = s32(b, 7);
  } else if (ext === 9) {
    data.Systimestamp = s32(b, 7);
  } else if (ext === 15) {
    var id = "";
    [2, 3, 4, 5, 7, 8, 9, 10].forEach(function (i) { id += hex2(b[i]) + " "; });
    data.ID = id;
  }
  return { data: data };
}
