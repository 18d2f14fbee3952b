import { assertEquals, assertRejects } from "../_assert.ts";
import { ensureDir, writeFileAtomic } from "../../runtime-adapters/deno/fs.ts";

Deno.test("writeFileAtomic writes 0600 by default, replaces content and leaves no temp files", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/secret`;
  await writeFileAtomic(path, "one");
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  await Deno.chmod(path, 0o644);
  await writeFileAtomic(path, new TextEncoder().encode("two"));
  assertEquals(await Deno.readTextFile(path), "two");
  assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  await writeFileAtomic(`${dir}/public`, "x", { mode: 0o644 });
  assertEquals((await Deno.stat(`${dir}/public`)).mode! & 0o777, 0o644);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["public", "secret"]);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("writeFileAtomic into a missing directory fails and creates nothing", async () => {
  const dir = await Deno.makeTempDir();
  await assertRejects(() => writeFileAtomic(`${dir}/missing/file`, "x"), Deno.errors.NotFound);
  assertEquals([...Deno.readDirSync(dir)].length, 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("ensureDir creates nested directories with the mode; refuses a file in the way", async () => {
  const dir = await Deno.makeTempDir();
  await ensureDir(`${dir}/a/b`, 0o700);
  assertEquals((await Deno.stat(`${dir}/a/b`)).mode! & 0o777, 0o700);
  await ensureDir(`${dir}/a/b`);
  await Deno.writeTextFile(`${dir}/f`, "");
  await assertRejects(() => ensureDir(`${dir}/f`), Error, "not a directory");
  await Deno.remove(dir, { recursive: true });
});
