import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { buildGoFixture } from "./go_fixtures.ts";
import { OutputLines, runScript, startScript, withTimeout } from "./helpers.ts";

// Seed 004's file transfer, built from tests/fixtures/seed004_file_* (the
// seed's steps written out in Go) and run against file_send and file_recv.

const hexOf = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** A temp folder with a source file of `size` bytes and an empty inbox. */
function sandbox(size: number) {
  const root = Deno.makeTempDirSync({ prefix: "netkit_file_seed_" });
  Deno.mkdirSync(`${root}/in`);
  const content = new Uint8Array(size).map((_, i) => (i * 13) % 251);
  Deno.writeFileSync(`${root}/report.bin`, content);
  return {
    root,
    dir: `${root}/in`,
    src: `${root}/report.bin`,
    content,
    /** The inbox, without the receiver's (empty) partials folder. */
    inbox: () => {
      const names = [...Deno.readDirSync(`${root}/in`)].map((e) => e.name);
      const partials = `${root}/in/.netkit-partials`;
      assert.deepEqual(
        names.includes(".netkit-partials") ? [...Deno.readDirSync(partials)] : [],
        [],
      );
      return names.filter((n) => n !== ".netkit-partials").sort();
    },
    [Symbol.asyncDispose]: () => Deno.remove(root, { recursive: true }),
  };
}

/** Runs the built seed sender to completion. */
async function seedSend(binary: string, path: string, port: number) {
  const out = await new Deno.Command(binary, { args: [path, `127.0.0.1:${port}`] }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout) };
}

Deno.test("file_recv --plain saves a seed 004 sender's file, logged as unverified", async () => {
  await using send = await buildGoFixture("seed004_file_send");
  await using box = sandbox(3_000_000);
  await using server = await startScript("file_recv", [
    "127.0.0.1:0",
    "--dir",
    box.dir,
    "--plain",
  ]);
  const r = await seedSend(send.path, box.src, server.port);
  assert.equal(r.code, 0, r.stdout);
  const saved = await server.stdout.waitFor(/^Saved .*report\.bin/);
  assert.match(saved, new RegExp(`3000000 bytes, sha256 ${hexOf(box.content)}, unverified`));
  await server.stderr.waitFor(/saved "report.bin", 3000000 bytes, unverified/);
  assert.deepEqual(await Deno.readFile(`${box.dir}/report.bin`), box.content);
  assert.deepEqual(box.inbox(), ["report.bin"]);
  // netkit's own sender still works beside it.
  const netkit = await runScript("file_send", [`127.0.0.1:${server.port}`, box.src, "--as", "x"]);
  assert.equal(netkit.code, 0, netkit.stderr);
  assert.doesNotMatch(netkit.stdout, /unverified/);
});

Deno.test("file_recv without --plain answers a seed 004 sender with one error line at once", async () => {
  await using send = await buildGoFixture("seed004_file_send");
  await using box = sandbox(10_000);
  await using server = await startScript("file_recv", ["127.0.0.1:0", "--dir", box.dir]);
  const r = await withTimeout(seedSend(send.path, box.src, server.port), 5_000, "the seed sender");
  assert.equal(r.code, 1);
  assert.equal(
    r.stdout,
    'not ok: error Expected "FILE <size> <name>", got "report.bin" (a bare name, as seed ' +
      "004's sender sends, is taken only by file_recv --plain)\n\n",
  );
  assert.deepEqual(box.inbox(), []);
  // A bare name that could still become a header ("FILE") waits a moment, then the same.
  Deno.renameSync(box.src, `${box.root}/FILE`);
  const held = await withTimeout(seedSend(send.path, `${box.root}/FILE`, server.port), 5_000, "x");
  assert.match(held.stdout, /^not ok: error Expected "FILE <size> <name>", got "FILE"/);
});

Deno.test("file_send --plain sends to a seed 004 receiver, and to file_recv --plain", async () => {
  await using recv = await buildGoFixture("seed004_file_recv");
  await using box = sandbox(2_500_000);
  const child = new Deno.Command(recv.path, {
    args: ["-addr", "127.0.0.1:0"],
    cwd: box.dir,
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const stdout = new OutputLines(child.stdout);
  try {
    const ready = await stdout.waitFor(/Listening on tcp:\/\//);
    const port = Number(/:(\d+)$/.exec(ready)![1]);
    const r = await runScript("file_send", [`127.0.0.1:${port}`, box.src, "--plain"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /, unverified: the bare receiver confirms nothing$/);
    assert.equal((await child.status).code, 0);
    await stdout.done;
    assert.equal(stdout.text, `${ready}\nreceived report.bin`);
  } finally {
    try {
      child.kill();
    } catch {
      // Exited after its one file.
    }
    await child.status;
  }
  assert.deepEqual(await Deno.readFile(`${box.dir}/report.bin`), box.content);
  Deno.removeSync(`${box.dir}/report.bin`);
  await using server = await startScript("file_recv", [
    "127.0.0.1:0",
    "--dir",
    box.dir,
    "--plain",
  ]);
  const r = await runScript("file_send", [`127.0.0.1:${server.port}`, box.src, "--plain"]);
  assert.equal(r.code, 0, r.stderr);
  await server.stdout.waitFor(/^Saved .*report\.bin .*unverified/);
  assert.deepEqual(await Deno.readFile(`${box.dir}/report.bin`), box.content);
});
