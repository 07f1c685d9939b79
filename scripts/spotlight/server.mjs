// Runs Spotlight (https://spotlightjs.com), a local receiver of the Sentry protocol, for the
// end-to-end test of traced-spawn. Started by start.sh; usage: node server.mjs PORT PORT_FILE
//
// Spotlight is started through its library export `setupSpotlight` rather than its CLI: the CLI
// reports its own telemetry to an outside host, the library does not. Two adjustments, both made
// here, in this process, before Spotlight starts:
//
// 1. Loopback only. `setupSpotlight` listens on every interface and takes no host; every
//    `listen(port)` without a host is made to listen on 127.0.0.1.
// 2. Content type. sentry-rust's HTTP transports POST envelopes without a `Content-Type` header,
//    and Spotlight silently drops a payload without one. A POST to a Sentry envelope endpoint
//    (`/api/<project>/envelope/`) that has no `Content-Type` is given
//    `application/x-sentry-envelope`, which is what the body is.
import http from "node:http";
import { writeFileSync } from "node:fs";

const HOST = "127.0.0.1";
const ENVELOPE_TYPE = "application/x-sentry-envelope";
const ENVELOPE_PATH = /^\/api\/[^/]+\/envelope\/?(\?|$)/;

const [portArg = "0", portFile] = process.argv.slice(2);
const port = Number(portArg);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`usage: node server.mjs PORT [PORT_FILE] (PORT 0 = any free port), got ${portArg}`);
  process.exit(2);
}

const listen = http.Server.prototype.listen;
http.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && (args.length === 1 || args[1] === undefined)) {
    args[1] = HOST;
  }
  return listen.apply(this, args);
};

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, ...rest) {
  if (
    event === "request" &&
    req.method === "POST" &&
    ENVELOPE_PATH.test(req.url) &&
    !req.rawHeaders.some((value, i) => i % 2 === 0 && value.toLowerCase() === "content-type")
  ) {
    req.rawHeaders.push("Content-Type", ENVELOPE_TYPE);
    req.headers["content-type"] = ENVELOPE_TYPE;
  }
  return emit.call(this, event, req, ...rest);
};

// Imported only now, so that the patches above are in place.
const { setupSpotlight } = await import("@spotlightjs/spotlight");
const server = await setupSpotlight({ port, isStandalone: true });
if (!server) {
  console.error(`Spotlight did not start: something already answers on ${HOST}:${port}`);
  process.exit(1);
}
const address = server.address();
console.log(`Spotlight listening on http://${address.address}:${address.port}`);
if (portFile) {
  writeFileSync(portFile, `${address.port}\n`);
}
