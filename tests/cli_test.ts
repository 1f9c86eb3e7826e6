import assert from "node:assert/strict";
import {
  type CommandSpec,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  parseDurationOption,
  parseIntOption,
  runCommand,
  usage,
  usageText,
  VERSION,
} from "../lib/cli/cli.ts";
import denoConfig from "../deno.json" with { type: "json" };

const spec = {
  name: "demo",
  summary: "Does a demo.",
  args: "[PORT]",
  options: {
    count: { type: "string", arg: "N", default: "3", description: "how many" },
    loud: { type: "boolean", short: "l", description: "shout" },
    header: { type: "string", short: "H", multiple: true, description: "a header" },
  },
} satisfies CommandSpec;

function capture() {
  const io = { stdout: "", stderr: "" };
  return {
    io,
    sink: { out: (t: string) => io.stdout += t, err: (t: string) => io.stderr += t },
  };
}

Deno.test("runCommand() passes typed values with defaults to the command", async () => {
  const { sink } = capture();
  let seen: unknown;
  const code = await runCommand(spec, ["-l", "-H", "a", "-H", "b", "80"], (p) => {
    seen = { ...p.values, args: p.positionals };
    return 0;
  }, sink);
  assert.equal(code, EXIT_OK);
  assert.deepEqual(seen, { count: "3", loud: true, header: ["a", "b"], args: ["80"] });
});

Deno.test("runCommand() prints help and version on stdout with exit 0", async () => {
  const { io, sink } = capture();
  assert.equal(await runCommand(spec, ["--help"], () => 1, sink), EXIT_OK);
  assert.match(io.stdout, /^Usage: demo \[PORT\]/);
  assert.match(io.stdout, /-l, --loud\s+shout/);
  assert.match(io.stdout, /--count N\s+how many \(default 3\)/);
  assert.equal(await runCommand(spec, ["--version"], () => 1, sink), EXIT_OK);
  assert.match(io.stdout, new RegExp(`demo \\(netkit\\) ${VERSION.replaceAll(".", "\\.")}`));
  assert.equal(VERSION, denoConfig.version);
});

Deno.test("runCommand() exits 2 on unknown options, extra arguments and UsageErrors", async () => {
  for (const args of [["--nope"], ["1", "2"], ["--count"]]) {
    const { io, sink } = capture();
    assert.equal(await runCommand(spec, args, () => 0, sink), EXIT_USAGE, args.join(" "));
    assert.match(io.stderr, /^demo: .+\nTry 'demo --help'/);
  }
  const { io, sink } = capture();
  const code = await runCommand(spec, ["--count", "x"], (p) => {
    parseIntOption(p.values.count, "count", { min: 1, max: 10 });
    return 0;
  }, sink);
  assert.equal(code, EXIT_USAGE);
  assert.match(io.stderr, /Invalid --count "x": must be an integer 1-10/);
});

Deno.test("runCommand() quotes an unknown or misused option with balanced quotes", async () => {
  for (
    const [args, message] of [
      [["--nope"], 'demo: Unknown option "--nope"'],
      [["-z"], 'demo: Unknown option "-z"'],
      [["--count"], 'demo: Option "--count" needs a value'],
      [["--loud=yes"], 'demo: Option "--loud" takes no value'],
    ] as Array<[string[], string]>
  ) {
    const { io, sink } = capture();
    assert.equal(await runCommand(spec, args, () => 0, sink), EXIT_USAGE);
    const first = io.stderr.split("\n")[0];
    assert.equal(first, message);
    assert.equal((first.match(/"/g) ?? []).length % 2, 0, "quotes are balanced");
  }
});

Deno.test("runCommand() exits 1 when the command fails at run time", async () => {
  const { io, sink } = capture();
  const code = await runCommand(spec, [], () => {
    throw new Deno.errors.ConnectionRefused("Connection refused (os error 111)");
  }, sink);
  assert.equal(code, EXIT_FAILURE);
  assert.match(io.stderr, /^demo: Connection refused/);
});

Deno.test("usage() turns a parse error into a UsageError with its message", async () => {
  const { io, sink } = capture();
  const code = await runCommand(spec, [], () => {
    usage(() => {
      throw new RangeError(`Cannot parse address "x:99999": port must be 0-65535`);
    });
    return 0;
  }, sink);
  assert.equal(code, EXIT_USAGE);
  assert.match(io.stderr, /Cannot parse address "x:99999"/);
});

Deno.test("parseDurationOption() reads ms, s, m, h and bare seconds", () => {
  assert.equal(parseDurationOption("500ms", "t"), 500);
  assert.equal(parseDurationOption("2", "t"), 2000);
  assert.equal(parseDurationOption("1.5s", "t"), 1500);
  assert.equal(parseDurationOption("2m", "t"), 120_000);
  assert.throws(() => parseDurationOption("soon", "timeout"), /Invalid --timeout "soon"/);
});

Deno.test("usageText() lists every option once, with --help and --version", () => {
  const text = usageText(spec);
  for (const flag of ["--count", "--loud", "--header", "--help", "--version"]) {
    assert.equal(text.split(flag).length - 1, 1, flag);
  }
});
