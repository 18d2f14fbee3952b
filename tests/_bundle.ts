/**
 * For tests that run a child as another user (`setpriv`): that user cannot
 * read this user's module cache, so the child runs from a bundle.
 */
import { assertEquals } from "./_assert.ts";

/**
 * Bundles `entry` to `dir/NAME.js` (NAME: `entry`'s name) and makes
 * `dir/cache`, owned by `uid`, for the child's DENO_DIR; `dir` is made
 * readable by all (0755).
 */
export async function bundleForUser(
  entry: URL,
  dir: string,
  uid: number,
): Promise<{ bundle: string; cache: string }> {
  await Deno.chmod(dir, 0o755);
  const name = entry.pathname.split("/").pop()!.replace(/^_/, "").replace(/\.ts$/, "");
  const bundle = `${dir}/${name}.js`;
  const built = await new Deno.Command(Deno.execPath(), {
    args: ["bundle", "--platform", "deno", entry.pathname, "-o", bundle],
    stdout: "null",
    stderr: "piped",
  }).output();
  assertEquals(built.code, 0, new TextDecoder().decode(built.stderr));
  const cache = `${dir}/cache`;
  await Deno.mkdir(cache);
  await Deno.chown(cache, uid, uid);
  return { bundle, cache };
}
