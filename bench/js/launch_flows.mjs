// Load generator for bench/launch.py: drives complete LTI launches (login -> the platform signs an id_token ->
// launch -> first page) against Caseload, acting as the browser and as the platform's authorization endpoint, and
// prints a JSON summary. Node's built-in http and crypto only (no packages): the Python client (requests and
// PyJWT) spent about a third of these two cores, which the server under test then did not get.
//   node launch_flows.mjs CONFIG_JSON
// CONFIG_JSON: {base, launches, concurrency, warmup, issuer, client_id, deployment_id, kid, private_key_pem,
//               claims: [claims with "nonce" to fill in, one per launch, cycled]}
import http from "node:http";
import crypto from "node:crypto";
import fs from "node:fs";

const cfg = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const base = new URL(cfg.base);
const key = crypto.createPrivateKey(cfg.private_key_pem);
const header = Buffer.from(JSON.stringify({ alg: "RS256", kid: cfg.kid, typ: "JWT" })).toString("base64url");

function sign(claims) {
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  const input = `${header}.${body}`;
  const signature = crypto.sign("RSA-SHA256", Buffer.from(input), key).toString("base64url");
  return `${input}.${signature}`;
}

// A browser opens a new connection per request here: gunicorn's sync workers close them anyway.
function request(method, path, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: base.hostname, port: base.port, path, method, headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(body);
  });
}

function cookieHeader(res) {
  return (res.headers["set-cookie"] || []).map((c) => c.split(";")[0]).join("; ");
}

async function launch(i) {
  const claims = { ...cfg.claims[i % cfg.claims.length] };
  const t0 = process.hrtime.bigint();
  const login = await request("GET", "/lti/login?" + new URLSearchParams({
    iss: cfg.issuer, login_hint: `u${i}`, target_link_uri: cfg.base + "/lti/launch", client_id: cfg.client_id,
    lti_deployment_id: cfg.deployment_id }), {});
  const t1 = process.hrtime.bigint();
  if (login.statusCode !== 302) return { ok: false, why: `login ${login.statusCode}` };
  const q = new URL(login.headers.location).searchParams;
  const now = Math.floor(Date.now() / 1000);
  Object.assign(claims, { nonce: q.get("nonce"), iat: now, exp: now + 60 });
  const form = new URLSearchParams({ id_token: sign(claims), state: q.get("state") }).toString();
  const t2 = process.hrtime.bigint();
  const launched = await request("POST", "/lti/launch", {
    "Content-Type": "application/x-www-form-urlencoded", "Content-Length": Buffer.byteLength(form),
    Cookie: cookieHeader(login) }, form);
  const t3 = process.hrtime.bigint();
  if (launched.statusCode !== 303) return { ok: false, why: `launch ${launched.statusCode}` };
  // The browser sends the cookies the launch set (a page token is bound to the launching browser).
  const page = await request("GET", launched.headers.location, { Cookie: cookieHeader(launched) });
  const t4 = process.hrtime.bigint();
  if (page.statusCode !== 200) return { ok: false, why: `first page ${page.statusCode}` };
  return { ok: true, loginLaunch: Number(t1 - t0 + t3 - t2) / 1e6, firstPage: Number(t4 - t3) / 1e6 };
}

async function run(count, offset, concurrency = cfg.concurrency) {
  const results = [];
  let next = 0;
  async function worker() {
    while (next < count) {
      const i = next++;
      try {
        results.push(await launch(offset + i));
      } catch (e) {
        results.push({ ok: false, why: String(e) });
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

// Warm-up: one launch alone first (as the first teacher of the day: the tool fetches the platform's JWKS and stores
// it for every process), then the rest concurrently (pools fill).
const warm = await run(1, 100000, 1);
await run(cfg.warmup, 100001);
if (!warm[0].ok) console.error(`warm-up launch failed: ${warm[0].why}`);
const started = process.hrtime.bigint();
const results = await run(cfg.launches, 0);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
const ok = results.filter((r) => r.ok);
console.log(JSON.stringify({
  seconds, launches: results.length, failures: results.length - ok.length,
  examples: results.filter((r) => !r.ok).slice(0, 3).map((r) => r.why),
  login_launch_ms: ok.map((r) => r.loginLaunch), first_page_ms: ok.map((r) => r.firstPage) }));
