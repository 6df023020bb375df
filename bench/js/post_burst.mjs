// Load generator for bench/webhooks.py: POSTs pre-signed bodies (one per line of a file) as fast as the server
// takes them, over keep-alive connections, and prints a JSON summary. Node's built-in http only (no packages):
// a Python client would spend more CPU than the server on these two cores.
//   node post_burst.mjs URL BODIES_FILE CONCURRENCY CONTENT_TYPE
import http from "node:http";
import fs from "node:fs";

const [url, file, concurrencyArg, contentType] = process.argv.slice(2);
const bodies = fs.readFileSync(file, "utf8").split("\n").filter((l) => l.length > 0);
const target = new URL(url);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrencyArg) });
const statuses = {};
const failures = [];
let next = 0;

function post(body) {
  return new Promise((resolve) => {
    const req = http.request({ host: target.hostname, port: target.port, path: target.pathname, method: "POST",
      agent, headers: { "Content-Type": contentType, "Content-Length": Buffer.byteLength(body) } }, (res) => {
      let data = "";
      res.setEncoding("utf8");
      res.on("data", (c) => { data += c; });
      res.on("end", () => {
        if (res.statusCode === 202) {
          const s = JSON.parse(data).status;
          statuses[s] = (statuses[s] || 0) + 1;
        } else if (failures.length < 5) {
          failures.push(`${res.statusCode} ${data.slice(0, 200)}`);
        } else {
          failures.push("");
        }
        resolve();
      });
    });
    req.on("error", (e) => { failures.push(`error ${e.message}`); resolve(); });
    req.end(body);
  });
}

async function worker() {
  while (next < bodies.length) {
    const i = next++;
    await post(bodies[i]);
  }
}

const started = process.hrtime.bigint();
await Promise.all(Array.from({ length: Number(concurrencyArg) }, worker));
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
agent.destroy();
console.log(JSON.stringify({ sent: bodies.length, seconds, statuses, failures: failures.length,
  examples: failures.filter((f) => f).slice(0, 3) }));
