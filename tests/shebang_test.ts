/**
 * `./scripts/x.ts` must run with the permissions `deno task x` grants, no
 * more and no fewer: the shebang line and the deno.json task are two
 * copies of one list, and this test keeps them equal.
 */
import assert from "node:assert/strict";
import { ROOT, ScriptProcess, taskArgs } from "./helpers.ts";

const SHEBANG = "#!/usr/bin/env -S deno run ";

/** The scripts in scripts/, by name. */
function scriptNames(): string[] {
  return [...Deno.readDirSync(`${ROOT}scripts`)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".ts"))
    .map((entry) => entry.name.slice(0, -".ts".length))
    .sort();
}

Deno.test("every script is executable, and its shebang grants exactly its deno.json task's flags", () => {
  const names = scriptNames();
  assert.ok(names.length > 20, `found only ${names.length} scripts`);
  const wrong: string[] = [];
  for (const name of names) {
    const path = `${ROOT}scripts/${name}.ts`;
    assert.ok((Deno.statSync(path).mode ?? 0) & 0o100, `${name}: not executable (chmod +x)`);
    const first = Deno.readTextFileSync(path).split("\n", 1)[0];
    assert.ok(first.startsWith(SHEBANG), `${name}: no "${SHEBANG}..." first line: ${first}`);
    const shebang = first.slice(SHEBANG.length).trim().split(/\s+/).sort();
    const [run, ...rest] = taskArgs(name);
    assert.equal(run, "run", `${name}: its task does not "deno run"`);
    assert.equal(rest.at(-1), `scripts/${name}.ts`, `${name}: its task runs another file`);
    const task = rest.slice(0, -1).sort();
    if (JSON.stringify(shebang) !== JSON.stringify(task)) {
      wrong.push(`${name}:\n  shebang ${shebang.join(" ")}\n  task    ${task.join(" ")}`);
    }
  }
  assert.deepEqual(wrong, [], `shebangs that differ from their tasks:\n${wrong.join("\n")}`);
});

Deno.test("./scripts/ws_chat_server.ts --workers 2 runs from its shebang alone", async () => {
  const child = new Deno.Command(`${ROOT}scripts/ws_chat_server.ts`, {
    args: ["--workers=2", "--host=127.0.0.1", "--port=0", "--tcp-port=off", "-q"],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  await using server = new ScriptProcess(child, false);
  await server.ready();
  assert.match(server.stdout.lines[0], /^Listening on http:\/\/127\.0\.0\.1:\d+ \(2 workers\)/);
  server.kill("SIGTERM");
  const status = await server.exit();
  assert.equal(status.code, 0, server.output);
});
