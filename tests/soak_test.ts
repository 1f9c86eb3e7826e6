import assert from "node:assert/strict";
import { ROOT } from "./helpers.ts";

Deno.test("bench soak, short form: every server at once, no good message lost, SIGTERM exits 0", async () => {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/soak_bench.ts", "--seconds", "10"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const out = new TextDecoder().decode(stdout);
  const report = `${out}\n${new TextDecoder().decode(stderr)}`;
  assert.equal(code, 0, report);
  const rows = out.split("\n").filter((line) => /_server\s/.test(line));
  assert.equal(rows.length, 10, report);
  for (const row of rows) assert.match(row, /\sok\s*$/, row);
});
