import assert from "node:assert/strict";
import { compileArgs, scriptNames } from "../tools/compile.ts";
import { ROOT, taskArgs, TcpPeer, withTimeout } from "./helpers.ts";
import { OutputLines } from "./helpers.ts";

const denort = Deno.env.get("DENORT_BIN");

Deno.test("every script has a task, and compile bakes in that task's permissions", () => {
  const scripts = [...Deno.readDirSync(new URL("../scripts", import.meta.url))]
    .map((e) => e.name.replace(/\.ts$/, ""))
    .sort();
  assert.deepEqual(scriptNames().sort(), scripts);
  const args = compileArgs("tcp_echo_server", "dist/tcp_echo_server");
  assert.deepEqual(args.slice(0, 1), ["compile"]);
  assert.ok(args.includes("--allow-net"));
  assert.ok(!args.includes("-A") && !args.includes("--allow-all"));
});

Deno.test({
  name: denort
    ? "deno compile builds tcp_echo_server into a binary that serves"
    : "deno compile builds tcp_echo_server into a binary that serves " +
      "(ignored: DENORT_BIN is not set, and deno compile would download denort)",
  ignore: !denort,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const out = `${dir}/tcp_echo_server`;
      const built = await new Deno.Command(Deno.execPath(), {
        args: compileArgs("tcp_echo_server", out),
        cwd: new URL("../", import.meta.url).pathname,
      }).output();
      assert.equal(built.code, 0, new TextDecoder().decode(built.stderr));
      const child = new Deno.Command(out, {
        args: ["127.0.0.1:0"],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const stdout = new OutputLines(child.stdout);
      const stderr = new OutputLines(child.stderr);
      try {
        const ready = await stdout.waitFor(/Listening on tcp:\/\/127\.0\.0\.1:\d+/);
        const port = Number(/:(\d+)$/.exec(ready)![1]);
        await using peer = await TcpPeer.connect(port);
        await peer.send("compiled\n");
        assert.equal(await peer.readLine(), "compiled");
      } finally {
        child.kill("SIGTERM");
        assert.equal((await withTimeout(child.status, 5000, "the binary to exit")).code, 0);
        await Promise.all([stdout.done, stderr.done]);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Runs a deno.json task (compile, bench) with its permissions; returns its code and output. */
async function runTask(task: string, args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [...taskArgs(task), ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  const decoder = new TextDecoder();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

Deno.test("deno task compile answers --help, and an unknown script is exit 2 without a stack trace", async () => {
  const help = await runTask("compile", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: compile \[SCRIPT\.\.\.\]/);
  const unknown = await runTask("compile", ["nosuch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /^compile: Unknown script "nosuch" \(have: tcp_echo_server, /);
  assert.doesNotMatch(unknown.stderr, /^\s+at |Stack backtrace/m);
});

Deno.test({
  name: "deno task compile offline stops at the first download failure with one clear line",
  ignore: denort !== undefined,
  async fn() {
    // A proxy nobody listens on makes the denort download fail here as it would offline.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const proxy = `http://127.0.0.1:${listener.addr.port}`;
    listener.close();
    const result = await runTask("compile", [], { HTTPS_PROXY: proxy, https_proxy: proxy });
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^compile: tcp_echo_server: cannot download https:\/\/dl\.deno\.land\//);
    assert.match(lines[0], /set DENORT_BIN/);
    assert.match(lines[0], new RegExp(`0 of ${scriptNames().length} built$`));
  },
});

Deno.test("deno task bench answers --help with its topics, and an unknown topic is exit 2", async () => {
  const help = await runTask("bench", ["--help"]);
  assert.equal(help.code, 0, help.stderr);
  assert.match(help.stdout, /^Usage: bench \[TOPIC\.\.\.\]/);
  assert.match(help.stdout, /tcp, udp, ws/);
  const unknown = await runTask("bench", ["--nosuch"]);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /Unknown option "--nosuch"/);
});
