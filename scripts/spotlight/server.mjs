// Runs Spotlight (https://spotlightjs.com), a local receiver of the Sentry protocol, for the
// end-to-end test of traced-spawn, and its UI for a developer (http://127.0.0.1:PORT/, served
// from the installed package: no network needed). Started by start.sh; usage:
// node server.mjs PORT PORT_FILE
//
// Spotlight is started through its library export `setupSpotlight` rather than its CLI: the CLI
// reports its own telemetry to an outside host, the library does not. One adjustment, made here,
// in this process, before Spotlight starts: loopback only. `setupSpotlight` listens on every
// interface and takes no host; every `listen(port)` without a host is made to listen on
// 127.0.0.1. Spotlight itself is unmodified: an envelope without
// `Content-Type: application/x-sentry-envelope` is answered 200 and dropped, as shipped, and idle
// keep-alive connections are closed after 5 s (Node's default), as shipped.
import http from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const HOST = "127.0.0.1";

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

// Imported only now, so that the patch above is in place.
const { setupSpotlight } = await import("@spotlightjs/spotlight");
// The UI's files, read as Spotlight's own CLI reads them (its manifest lists them).
// (The package's main module is dist/server/main.js.)
const main = fileURLToPath(import.meta.resolve("@spotlightjs/spotlight"));
const uiDir = join(dirname(main), "..", "ui");
const filesToServe = Object.create(null);
filesToServe["index.html"] = readFileSync(join(uiDir, "index.html"));
for (const entry of Object.values(JSON.parse(readFileSync(join(uiDir, "manifest.json"))))) {
  if (entry && typeof entry.file === "string") {
    filesToServe[entry.file] = readFileSync(join(uiDir, entry.file));
  }
}
const server = await setupSpotlight({ port, isStandalone: true, basePath: uiDir, filesToServe });
if (!server) {
  console.error(`Spotlight did not start: something already answers on ${HOST}:${port}`);
  process.exit(1);
}
const address = server.address();
console.log(`Spotlight listening on http://${address.address}:${address.port}`);
if (portFile) {
  writeFileSync(portFile, `${address.port}\n`);
}
