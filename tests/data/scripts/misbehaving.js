// A script that misbehaves on purpose, one way per first payload byte; any other byte decodes normally.
var kept = [];
function decodeUplink(input) {
  var b = input.bytes;
  switch (b[0]) {
    case 1:
      throw new Error("cannot decode " + b.length + " bytes");
    case 2:
      for (;;) {}
    case 3:
      return { data: { big: BigInt(1) } };
    case 4:
      for (;;) kept.push(new Array(100000).fill(1));
    case 5:
      return {
        data: {
          require: typeof require, process: typeof process, std: typeof std, os: typeof os,
          fetch: typeof fetch, XMLHttpRequest: typeof XMLHttpRequest, setTimeout: typeof setTimeout,
          setInterval: typeof setInterval, performance: typeof performance, queueMicrotask: typeof queueMicrotask,
        },
      };
    case 6:
      return null;
    case 7:
      return { data: { value: 1 }, errors: ["battery compartment open", "no reading"] };
    case 8:
      throw "plain text thrown";
    case 9:
      var cycle = {};
      cycle.self = cycle;
      return { data: cycle };
    case 10:
      return { data: "just text" };
    case 11:
      return { data: { text: "half a pair \ud800 of surrogates" } };
    case 12:
      return { data: { text: "nul \u0000 inside" }, warnings: ["escaped backslash-u0000: \\u0000"] };
    case 13:
      return { data: { text: "a \\ud800 that is no surrogate" }, warnings: ["lone \udc00 in a warning \u0000"] };
    default:
      return { data: { value: b[0] } };
  }
}
