import assert from "node:assert/strict";
import { hasCommand, ROOT, ScriptProcess } from "./helpers.ts";

/**
 * Ctrl-C as a terminal sends it: SIGINT to the whole foreground process
 * group, here `deno task NAME` and the program it runs. `deno task` also
 * forwards it to the program, which then sees it twice within a few
 * milliseconds (unless the two coalesce): the copy must not count as a
 * second Ctrl-C.
 */
async function ctrlCUnderTask(task: string, args: string[]): Promise<number> {
  const child = new Deno.Command("setsid", {
    // setsid makes `deno task` a process group leader, as a shell's job is.
    args: [Deno.execPath(), "task", "-q", task, ...args],
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const proc = new ScriptProcess(child, false);
  try {
    await proc.ready(20_000);
    Deno.kill(-child.pid, "SIGINT");
    const { code } = await proc.exit(20_000);
    if (code !== 0) console.error(`${task}: exit ${code}\n${proc.output}`);
    return code;
  } finally {
    try {
      Deno.kill(-child.pid, "SIGKILL"); // the program too, not only `deno task`
    } catch {
      // Gone already.
    }
    await proc[Symbol.asyncDispose]();
  }
}

/** How often each server is interrupted: the copy coalesces with the first now and then. */
const TRIES = 5;

for (
  const [task, args] of [
    ["http_server", ["127.0.0.1:0"]],
    ["udp_echo_server", ["127.0.0.1:0"]],
    ["ws_echo_server", ["--host=127.0.0.1", "--port=0"]],
  ] as const
) {
  Deno.test({
    name: `Ctrl-C on \`deno task ${task}\` exits 0 every time`,
    ignore: !hasCommand("setsid"),
    fn: async () => {
      const codes: number[] = [];
      for (let i = 0; i < TRIES; i++) codes.push(await ctrlCUnderTask(task, [...args]));
      assert.deepEqual(codes, Array(TRIES).fill(0));
    },
  });
}
