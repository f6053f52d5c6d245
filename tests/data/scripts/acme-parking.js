// Acme parking sensor (a made-up device), TTN decodeUplink style.
// fPort 2, 2 bytes: state (0 free, 1 occupied), battery (0.01 V above 2 V).
function decodeUplink(input) {
  var b = input.bytes;
  if (input.fPort !== 2 || b.length < 2) return { errors: ["not a status frame"] };
  if (b[0] > 1) return { errors: ["unknown state " + b[0]] };
  return {
    data: {
      state: b[0] === 1 ? "occupied" : "free",
      battery: { volts: 2 + b[1] / 100 },
      received: input.recvTime.toISOString(),
    },
  };
}
