import assert from "node:assert/strict";
import {
  HASH_BYTES,
  MIN_ITERATIONS,
  PasswordHasher,
  SALT_BYTES,
  timingSafeEqual,
} from "../lib/im/password.ts";

Deno.test("PasswordHasher refuses fewer than 600,000 iterations unless told it is a test", () => {
  assert.equal(new PasswordHasher().iterations, MIN_ITERATIONS);
  assert.throws(() => new PasswordHasher({ iterations: 1000 }), /must be at least 600000/);
  assert.throws(() => new PasswordHasher({ iterations: 0, allowWeakForTests: true }), RangeError);
  assert.equal(new PasswordHasher({ iterations: 1000, allowWeakForTests: true }).iterations, 1000);
});

Deno.test("PasswordHasher stores a salted hash, never the password, and verifies it", async () => {
  const hasher = new PasswordHasher({ iterations: 1000, allowWeakForTests: true });
  const a = await hasher.hash("correct horse");
  const b = await hasher.hash("correct horse");
  assert.equal(a.algorithm, "pbkdf2-sha256");
  assert.equal(a.salt.byteLength, SALT_BYTES);
  assert.equal(a.hash.byteLength, HASH_BYTES);
  assert.notDeepEqual(a.salt, b.salt, "each password gets its own salt");
  assert.notDeepEqual(a.hash, b.hash);
  assert.ok(!JSON.stringify([...a.hash]).includes("correct"));
  assert.equal(await hasher.verify("correct horse", a), true);
  assert.equal(await hasher.verify("correct horsE", a), false);
  assert.equal(await hasher.verify("", a), false);
});

Deno.test("PasswordHasher matches the PBKDF2-HMAC-SHA256 vector of RFC 7914 (first 32 bytes)", async () => {
  const hasher = new PasswordHasher({ iterations: 80_000, allowWeakForTests: true });
  const salt = new TextEncoder().encode("NaCl");
  const expected = "4ddcd8f60b98be21830cee5ef22701f9641a4418d04c0414aeff08876b34ab56";
  const record = {
    algorithm: "pbkdf2-sha256" as const,
    iterations: 80_000,
    salt,
    hash: Uint8Array.from(expected.match(/../g)!.map((h) => parseInt(h, 16))),
  };
  assert.equal(await hasher.verify("Password", record), true);
});

Deno.test("PasswordHasher costs one derivation for an unknown user as for a wrong password", async () => {
  const hasher = new PasswordHasher({ iterations: 1000, allowWeakForTests: true });
  const record = await hasher.hash("right password");
  const before = hasher.derivations;
  assert.equal(await hasher.verify("wrong password", record), false);
  assert.equal(hasher.derivations, before + 1);
  assert.equal(await hasher.verify("wrong password", null), false);
  assert.equal(hasher.derivations, before + 2);
});

Deno.test("PasswordHasher runs at most `concurrency` derivations at once", async () => {
  const hasher = new PasswordHasher({ iterations: 2000, allowWeakForTests: true, concurrency: 1 });
  const records = await Promise.all(Array.from({ length: 6 }, (_, i) => hasher.hash(`pw-${i}`)));
  const checks = await Promise.all(records.map((r, i) => hasher.verify(`pw-${i}`, r)));
  assert.deepEqual(checks, [true, true, true, true, true, true]);
});

Deno.test("PasswordHasher.needsRehash() flags records weaker than the current setting", async () => {
  const weak = await new PasswordHasher({ iterations: 1000, allowWeakForTests: true }).hash("pw");
  const hasher = new PasswordHasher({ iterations: 2000, allowWeakForTests: true });
  assert.equal(hasher.needsRehash(weak), true);
  assert.equal(hasher.needsRehash(await hasher.hash("pw")), false);
});

Deno.test("timingSafeEqual() compares whole arrays, lengths included", () => {
  assert.equal(timingSafeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3)), true);
  assert.equal(timingSafeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4)), false);
  assert.equal(timingSafeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0)), false);
  assert.equal(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
});
