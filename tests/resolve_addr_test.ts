import assert from "node:assert/strict";
import { UsageError } from "../lib/cli/cli.ts";
import { resolveAddr, ResolveError, splitHostPort } from "../scripts/resolve_addr.ts";
import { runScript } from "./helpers.ts";

Deno.test("resolve_addr tcp6 [::1]:80 prints IP, Port and Zone", async () => {
  const { code, stdout, stderr } = await runScript("resolve_addr", ["tcp6", "[::1]:80"]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout, "[::1]:80  IP: ::1  Port: 80  Zone:");
});

Deno.test("resolve_addr udp4 localhost:53 uses the system resolver, so /etc/hosts counts", async () => {
  const { code, stdout, stderr } = await runScript("resolve_addr", ["udp4", "localhost:53"]);
  assert.equal(code, 0, stderr);
  assert.equal(stdout.split("\n")[0], "127.0.0.1:53  IP: 127.0.0.1  Port: 53  Zone:");
  const json = await runScript("resolve_addr", ["--json", "udp4", "localhost:domain"]);
  assert.deepEqual(JSON.parse(json.stdout)[0], { ip: "127.0.0.1", port: 53, zone: "" });
  // A name that only /etc/hosts knows (Deno.resolveDns would miss it).
  const entry = Deno.readTextFileSync("/etc/hosts").split("\n")
    .map((line) => line.replace(/#.*/, "").trim().split(/\s+/))
    .find(([ip, name]) => /^\d+\.\d+\.\d+\.\d+$/.test(ip ?? "") && name && name !== "localhost");
  if (entry) {
    const hosts = await runScript("resolve_addr", ["tcp4", `${entry[1]}:1`]);
    assert.equal(hosts.stdout.split("\n")[0], `${entry[0]}:1  IP: ${entry[0]}  Port: 1  Zone:`);
  }
});

Deno.test("resolve_addr shows the zone of a link-local IPv6 address and accepts service names", async () => {
  const { code, stdout } = await runScript("resolve_addr", ["tcp", "[fe80::1%eth0]:http"]);
  assert.equal(code, 0);
  assert.equal(stdout, "[fe80::1%eth0]:80  IP: fe80::1  Port: 80  Zone: eth0");
});

Deno.test("resolve_addr exits 2 for an unknown network or a bad port, quoting the value", async () => {
  for (
    const [args, pattern] of [
      [["tcp7", "localhost:80"], /Unknown network "tcp7": expected one of tcp, tcp4, tcp6/],
      [["ip", "localhost:80"], /Unknown network "ip"/],
      [["tcp", "localhost:99999"], /Cannot parse port "99999": must be 0-65535/],
      [["udp", "localhost:http"], /Unknown port "http"/], // http is a TCP service in Go's table
      [["tcp", "localhost"], /Cannot parse address "localhost": missing port in address/],
      [["tcp", "::1:80"], /too many colons/],
      [["tcp"], /Missing argument: NETWORK ADDRESS/],
    ] as const
  ) {
    const { code, stderr } = await runScript("resolve_addr", [...args]);
    assert.equal(code, 2, `${args}: ${stderr}`);
    assert.match(stderr, pattern);
  }
});

Deno.test("resolve_addr exits 1 for a name that does not resolve or no address of the family", async () => {
  const missing = await runScript("resolve_addr", ["tcp", "no-such-host.invalid:80"]);
  assert.equal(missing.code, 1, missing.stderr);
  assert.match(missing.stderr, /Cannot resolve "no-such-host\.invalid": no such host/);
  const family = await runScript("resolve_addr", ["tcp4", "[::1]:80"]);
  assert.equal(family.code, 1, family.stderr);
  assert.match(family.stderr, /Cannot resolve "\[::1\]:80" for tcp4: no suitable address found/);
});

Deno.test("resolveAddr() gives unspecified addresses for :PORT and refuses a zone on IPv4", async () => {
  assert.deepEqual(await resolveAddr("udp6", ":53"), [{ ip: "::", port: 53, zone: "" }]);
  assert.deepEqual(await resolveAddr("tcp", ":0"), [{ ip: "0.0.0.0", port: 0, zone: "" }]);
  assert.deepEqual(splitHostPort("[::1%lo]:x"), { host: "::1%lo", port: "x" });
  assert.throws(() => splitHostPort("[::1]80"), UsageError);
  await assert.rejects(resolveAddr("tcp", "1.2.3.4%eth0:80"), ResolveError);
});
