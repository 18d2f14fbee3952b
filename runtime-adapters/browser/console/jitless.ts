/**
 * Imported first by client.ts, before any module builds a schema: zod probes
 * `new Function` when the first object schema is built, and the console's
 * CSP (no eval, Trusted Types) reports that probe as a violation even though
 * zod catches it. `jitless` skips the probe and the compiled parsers.
 *
 * @module
 */
import * as z from "zod";

z.config({ jitless: true });
