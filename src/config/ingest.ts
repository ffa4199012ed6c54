import { Type } from 'typebox'
import { oneOf } from './schema-helpers.ts'

/** Ingest, devices and commands (modules ingest and commands). */
export const ingestSettings = {
  INGEST_MAX_BYTES: Type.Integer({
    description: 'largest MQTT message the ingest accepts',
    minimum: 256,
    maximum: 16 * 1024 * 1024,
    default: 64 * 1024,
  }),
  INGEST_MAX_FUTURE_S: Type.Integer({
    description: 'how far in the future a message timestamp may lie before it is rejected',
    minimum: 0,
    maximum: 365 * 86400,
    default: 86400,
  }),
  INGEST_MAX_PAST_S: Type.Integer({
    description: 'how far in the past a message timestamp may lie before it is rejected',
    minimum: 0,
    maximum: 20 * 365 * 86400,
    default: 365 * 86400,
  }),
  INGEST_DEVICE_RATE_MAX: Type.Integer({
    minimum: 0,
    maximum: 1_000_000,
    default: 0,
    description: 'messages per second per device before the excess is dropped and counted; 0 = no limit',
  }),
  UNKNOWN_DEVICE_POLICY: oneOf(
    ['reject', 'auto_register'],
    'reject',
    'what to do with unregistered device ids',
  ),
  INGEST_FLUSH_MS: Type.Integer({
    minimum: 10,
    maximum: 60000,
    default: 250,
    description: 'store flush period',
  }),
  INGEST_BATCH_MAX: Type.Integer({
    minimum: 1,
    maximum: 100000,
    default: 5000,
    description: 'messages per flush',
  }),
  INGEST_MAX_INFLIGHT: Type.Integer({
    minimum: 10,
    maximum: 10_000_000,
    default: 200_000,
    description:
      'journaled messages not yet stored in the database before intake pauses (a backstop for tiny messages; INGEST_MAX_PENDING_BYTES binds first for datagrams; archive lines do not count)',
  }),
  INGEST_MAX_PENDING_BYTES: Type.Integer({
    minimum: 64 * 1024,
    maximum: 64 * 1024 * 1024 * 1024,
    default: 64 * 1024 * 1024,
    description:
      'memory of journaled messages not yet stored in the database (payload, topic and ~160 bytes each) before intake pauses: bounds memory while the database is down',
  }),
  INGEST_GAP_GRACE_MS: Type.Integer({
    description:
      'how long a missing seq may still arrive (out of order, another broker) before it counts as a gap',
    minimum: 0,
    maximum: 3_600_000,
    default: 30000,
  }),
  INGEST_DEDUP_WINDOW: Type.Integer({
    description:
      'seqs per device remembered for deduplication (4 bytes each: a payload digest; up to twice that per device for ~one window after a reboot)',
    minimum: 64,
    maximum: 65536,
    default: 1024,
  }),
  DEVICE_CACHE_MAX: Type.Integer({
    description: 'devices whose dedup window and id lookup stay cached in memory (LRU)',
    minimum: 100,
    maximum: 10_000_000,
    default: 100000,
  }),
  LIVENESS_SWEEP_MS: Type.Integer({
    description: 'how often silent devices are marked offline',
    minimum: 100,
    maximum: 600000,
    default: 5000,
  }),
  ARCHIVE_FLUSH_MS: Type.Integer({
    minimum: 10,
    maximum: 1000,
    default: 1000,
    description: 'checkpoint period: archive objects, registry activity, dedup state',
  }),
  ARCHIVE_BUFFER_MAX_BYTES: Type.Integer({
    minimum: 64 * 1024,
    maximum: 64 * 1024 * 1024 * 1024,
    default: 128 * 1024 * 1024,
    description:
      'memory of archive lines stored in the database but not yet written to the archive; past half of it a checkpoint starts at once, at all of it intake pauses (an archive outage)',
  }),
  COMMAND_ACK_TIMEOUT_S: Type.Integer({
    description: 'a command without an ack after this long becomes timeout',
    minimum: 1,
    maximum: 86400,
    default: 300,
  }),
}
