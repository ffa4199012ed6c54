import type { TSchema } from 'typebox'
import { Compile } from 'typebox/compile'
import { DEVICE_KINDS, type DeviceKindName, MESSAGE_KINDS } from './message-kinds.ts'

/** A compiled payload schema, typed loosely: each reader uses the fields its kind's schema guarantees. */
export interface PayloadValidator {
  Check(value: unknown): boolean
  Errors(value: unknown): Iterable<{ instancePath: string; message: string }>
}

const compile = (schema: TSchema) => Compile(schema) as unknown as PayloadValidator

/** The v2 payload check of every device → server kind, compiled once. */
export const validators = Object.fromEntries(
  DEVICE_KINDS.map((kind) => [kind, compile(MESSAGE_KINDS[kind].schema)]),
) as Record<DeviceKindName, PayloadValidator>

/** The v1 telemetry check (PROTOCOL.md, Version 1). */
export const telemetryV1Validator = compile(MESSAGE_KINDS.telemetry.v1Schema)
