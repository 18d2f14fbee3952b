/**
 * Whether an uncompressed P-256 point lies on the curve. Deno's WebCrypto
 * imports an off-curve point without complaint and only fails when the key
 * verifies (a `TypeError`, not `false`), so a client could have a
 * certificate issued for a key that cannot exist; browsers and workerd check
 * the point at import. Public data only, so plain BigInt arithmetic is fine.
 *
 * @module
 */
import { toHex } from "../util/encoding.ts";

const P = 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn;
const B = 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn;

/**
 * True when `point` is `04 ‖ X ‖ Y` (65 bytes), both coordinates below the
 * field prime, and y² = x³ − 3x + b (mod p).
 *
 * @example
 * ```ts
 * import { onP256Curve } from "./p256_point.ts";
 * onP256Curve(new Uint8Array(65)); // false: no 0x04 prefix
 * ```
 */
export function onP256Curve(point: Uint8Array): boolean {
  if (point.length !== 65 || point[0] !== 0x04) return false;
  const x = BigInt(`0x${toHex(point.subarray(1, 33))}`);
  const y = BigInt(`0x${toHex(point.subarray(33))}`);
  if (x >= P || y >= P) return false;
  const rhs = (((x * x % P) * x - 3n * x + B) % P + P) % P;
  return y * y % P === rhs;
}
