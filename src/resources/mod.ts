/**
 * Resources in Teleport's YAML shapes: schemas, validation by kind, YAML
 * reading and writing, and the token write rules.
 *
 * @module
 */
export * from "./schemas.ts";
export * from "./validate.ts";
export * from "./yaml.ts";
export * from "./token_rules.ts";
