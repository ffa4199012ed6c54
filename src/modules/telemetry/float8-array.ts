/**
 * float8[] values to and from PostgreSQL without the drivers' generic array code, which showed up
 * at ~8 % of the server's CPU under ingest load (serialising params, parsing results).
 */

import { PgBinaryWriter } from './pg-binary-writer.ts'
import { writeFloat8Array } from './telemetry-record-codec.ts'

/**
 * A float8[] parameter in PostgreSQL's binary array format (array_recv), as the row encoder writes
 * the float8[] columns. Buffers go out as binary parameters on node-postgres and on PGlite alike,
 * so the server reads the doubles as they are: no strtod, and every value exact, -0 included.
 * null (or undefined) elements become NULL.
 */
export function encodeFloat8Array(values: readonly (number | null | undefined)[]): Buffer {
  const w = new PgBinaryWriter(4 + 20 + 12 * values.length) // prefix, header, elements
  writeFloat8Array(w, values)
  return w.bytes().subarray(4) // without the length prefix a record field has
}

/**
 * A one-dimensional float8[] (or int[]) as PostgreSQL prints it: `{1.5,NULL,-0,1e+21,NaN}`, `{}`,
 * or with bounds `[0:1]={1,2}`. Elements of numeric arrays are never quoted, and Number() reads
 * every float8 output exactly (shortest round-trip digits, Infinity, -Infinity, NaN).
 */
export function parseFloat8Array(text: string): (number | null)[] {
  let start = 1
  if (text.charCodeAt(0) === 0x5b /* [ */) start = text.indexOf('=') + 2
  if (text.charCodeAt(start) === 0x7b /* { */) throw new Error('multi-dimensional arrays are not supported')
  const end = text.length - 1 // the closing brace
  const out: (number | null)[] = []
  if (end <= start) return out
  for (let from = start; ; ) {
    let comma = text.indexOf(',', from)
    if (comma === -1) comma = end
    const element = text.slice(from, comma)
    out.push(element === 'NULL' ? null : Number(element))
    if (comma === end) return out
    from = comma + 1
  }
}
