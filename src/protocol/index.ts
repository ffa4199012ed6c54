/** The wire protocol (PROTOCOL.md): the lowest layer, read by platform and modules alike. */
export * from './binary-telemetry.ts'
export * from './device-id.ts'
export * from './message-kinds.ts'
export { MAX_MEASUREMENTS, MEASUREMENT_TYPE_PATTERN } from './message-schemas.ts'
export * from './topics.ts'
export * from './validators.ts'
