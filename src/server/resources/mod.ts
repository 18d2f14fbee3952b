/**
 * The resource store of the admin API: get, list, create/upsert and delete
 * resources by kind and name over the backend. Every write is one atomic
 * compare-and-swap on the entry's version that also stores the audit event.
 *
 * Stored values are the resources' JSON renderings (the YAML shapes) without
 * `metadata.revision`; reads set `metadata.revision` to the backend version.
 *
 * Point reads are in read.ts, listings in list.ts, writes in write.ts (each
 * resource's checked write in write_plan.ts), and the validated-once cache
 * the reads share in validated.ts.
 *
 * @module
 */
export { getResource, nameParts, type StoredResource, withRevision } from "./read.ts";
export {
  DEFAULT_RESOURCE_PAGE,
  listResources,
  MAX_RESOURCE_PAGE,
  type ResourceListOptions,
  type ResourcePage,
} from "./list.ts";
export { type Actor, type WriteMode } from "./write_plan.ts";
export {
  deleteResource,
  putResource,
  putResources,
  type PutResult,
  requestTokenRotation,
} from "./write.ts";
export { validateWrite } from "./validated.ts";
