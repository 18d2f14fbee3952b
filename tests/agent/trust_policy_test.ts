/**
 * The CA-pin policy with the first contact injected (no sockets): what it
 * refuses, and that a saved CA is reused without an unverified contact.
 * tests/tbot/trust_test.ts runs the same policy over Deno's real TLS first
 * contact.
 *
 * @module
 */
import { MemoryStorage } from "../../src/agent/memory_storage.ts";
import { readText, STORAGE_FILES } from "../../src/agent/storage.ts";
import { type FirstContact, pinnedHostCas } from "../../src/agent/trust/mod.ts";
import { KeyboundError } from "../../src/errors.ts";
import { certificatesFromPem } from "../../src/pki/mod.ts";
import { issueServerCertificate } from "../../src/server/mod.ts";
import { assertEquals, assertRejects } from "../_assert.ts";
import { newCluster } from "./_cluster.ts";

Deno.test("trust policy: learned once through the first contact, then read from storage", async () => {
  const cluster = await newCluster();
  const leaf = await issueServerCertificate(cluster.ctx, {
    dnsNames: [],
    ipAddresses: ["127.0.0.1"],
  });
  let contacts = 0;
  const contact: FirstContact = () => {
    contacts++;
    return Promise.resolve({
      leafDer: certificatesFromPem(leaf.certPem)[0],
      status: 200,
      body: JSON.stringify({ tls_ca_certs: [cluster.hostCaPem], ssh_ca_keys: [] }),
    });
  };
  const storage = new MemoryStorage();
  const url = "https://127.0.0.1:3025";
  assertEquals(await pinnedHostCas(url, [cluster.pin], storage, contact), [cluster.hostCaPem]);
  assertEquals(await readText(storage, STORAGE_FILES.hostCa), cluster.hostCaPem);
  assertEquals(await pinnedHostCas(url, [cluster.pin], storage, contact), [cluster.hostCaPem]);
  assertEquals(contacts, 1, "the saved CA is used without a second unverified contact");

  const other = await newCluster("other.example.com");
  await assertRejects(
    () => pinnedHostCas(url, [other.pin], storage, contact),
    KeyboundError,
    "matches none of onboarding.ca_pins",
  );
  assertEquals(contacts, 2, "a saved CA that matches no pin is not trusted");
});

Deno.test("trust policy: an answer that is not a host CA list is refused", async () => {
  const answers: [number, string, string][] = [
    [404, "{}", "answered HTTP 404"],
    [200, "not json", "did not answer with host CA certificates"],
    [200, '{"tls_ca_certs": "x"}', "did not answer with host CA certificates"],
  ];
  for (const [status, body, message] of answers) {
    const contact: FirstContact = () =>
      Promise.resolve({ leafDer: new Uint8Array(), status, body });
    const e = await assertRejects(
      () =>
        pinnedHostCas("https://a:1", ["sha256:" + "0".repeat(64)], new MemoryStorage(), contact),
      KeyboundError,
      message,
    );
    assertEquals(e.code, "CONNECTION_FAILED");
  }
});
