/**
 * The Workers `DurableObject` base class, typed with the local interfaces in
 * ./types.ts. A Durable Object must extend it for its methods to be callable
 * over RPC; `cloudflare:workers` exists only inside workerd, so bundles keep it
 * external (see ./build.ts).
 *
 * @module
 */
import { DurableObject as WorkersDurableObject } from "cloudflare:workers";
import type { DurableObjectState } from "./types.ts";

/** What a Durable Object instance inherits from the base class. */
export interface DurableObjectBase<Env> {
  /** The object's state and storage. */
  readonly ctx: DurableObjectState;
  /** The Worker's bindings. */
  readonly env: Env;
}

/** The base class every Keybound Durable Object extends. */
export const DurableObject = WorkersDurableObject as unknown as new <Env>(
  ctx: DurableObjectState,
  env: Env,
) => DurableObjectBase<Env>;
