import assert from "node:assert/strict";
import { compileArgs, scriptNames } from "../tools/compile.ts";
import { TcpPeer, withTimeout } from "./helpers.ts";
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
