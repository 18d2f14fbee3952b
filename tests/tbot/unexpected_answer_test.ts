/**
 * A join answer tbot cannot use is told apart from an auth service that
 * cannot be reached by the error's `details` (src/protocol/http_client.ts),
 * and the log says what it is: JSON of another wire version (the field that
 * failed is named) or no JSON at all, never "running and reachable". A real
 * tbot against a real HTTP server answering as a server of another version,
 * or as a proxy's page, would.
 */
import { assert, assertEquals, assertMatch } from "../_assert.ts";
import { runTbot, tbotYaml } from "./_harness.ts";

Deno.test("tbot names the field of a join answer from another version, and says what it is", async () => {
  const dir = await Deno.makeTempDir({ prefix: "tbot-unexpected-" });
  const cases: [string, RegExp][] = [
    [
      // A step of a kind this tbot does not know, as a later version might send.
      '{"session":"x","step":{"type":"dance"}}',
      /unexpected join response from the server: step\.type: .*; the auth service at \S+ answered, but its field step\.type is not what this tbot reads: tbot and the auth service are of different versions/,
    ],
    [
      "<html>Sign in to the proxy</html>",
      /unexpected join response from the server: the answer is not JSON \(CONNECTION_FAILED\); something answered at \S+, but not with JSON: check that auth_server names the auth service, not a proxy or another service/,
    ],
  ];
  try {
    for (const [body, expected] of cases) {
      const server = Deno.serve(
        { hostname: "127.0.0.1", port: 0, onListen: () => {} },
        () => new Response(body, { status: 200 }),
      );
      try {
        await Deno.writeTextFile(
          `${dir}/tbot.yaml`,
          tbotYaml({
            address: `http://127.0.0.1:${server.addr.port}`,
            storage: `${dir}/bot`,
            secret: "s3cret",
            extra: "insecure: true",
          }),
        );
        const r = await runTbot(["start", "-c", `${dir}/tbot.yaml`, "--oneshot"]);
        assertEquals(r.code, 1, r.stderr);
        assertMatch(r.stderr, expected);
        assert(!r.stderr.includes("running and reachable"), r.stderr);
      } finally {
        await server.shutdown();
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
