/**
 * The `workload-identity-jwt` output: a JWT-SVID for the configured
 * audiences in the file `jwt_svid`, as Teleport writes it.
 *
 * @module
 */
import { JWT_SVID_PATH, JwtSvidResponse } from "../../protocol/workload_messages.ts";
import type { BotIdentity } from "../identity.ts";
import { writeText } from "../storage.ts";
import { IssuingOutput, type IssuingOutputOptions, ttlSeconds } from "./workload_common.ts";

/** The file the output writes. */
export const JWT_SVID_FILE = "jwt_svid";

/** Writes a JWT-SVID of the selected workload identity. */
export class WorkloadIdentityJwtOutput extends IssuingOutput {
  readonly type = "workload-identity-jwt";
  #selector: string;
  #audiences: string[];

  /**
   * Creates the output.
   *
   * @param o destination, API and lifetime
   * @param selectorName the `workload_identity` to issue from
   * @param audiences the token's `aud`
   */
  constructor(o: IssuingOutputOptions, selectorName: string, audiences: string[]) {
    super(o);
    this.#selector = selectorName;
    this.#audiences = [...audiences];
  }

  async write(identity: BotIdentity): Promise<void> {
    const r = await this.options.api.post(identity, JWT_SVID_PATH, {
      selector: { name: this.#selector },
      audiences: this.#audiences,
      ttl_seconds: ttlSeconds(this.options.credentialTtlMs),
    }, JwtSvidResponse);
    await writeText(this.options.destination, JWT_SVID_FILE, r.jwt);
  }
}
