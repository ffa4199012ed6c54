import type { FastifyInstance } from 'fastify'

type Client = FastifyInstance['metrics']['client']

/** The ingest's Prometheus metrics (ARCHITECTURE.md "Observability"). */
export function createIngestMetrics(client: Client, registry: Client['register']) {
  const registers = [registry]
  return {
    messages: new client.Counter({
      name: 'ingest_messages_total',
      help: 'Messages accepted by the ingest (after dedup), by type',
      labelNames: ['type'] as const,
      registers,
    }),
    received: new client.Counter({
      name: 'ingest_received_total',
      help: 'Messages received from the brokers (before dedup)',
      registers,
    }),
    measurements: new client.Counter({
      name: 'ingest_measurements_total',
      help: 'Measurements handed to the time-series store',
      registers,
    }),
    duplicates: new client.Counter({
      name: 'ingest_duplicates_total',
      help: 'Copies dropped by dedup',
      registers,
    }),
    seqConflicts: new client.Counter({
      name: 'ingest_seq_conflicts_total',
      help: 'Messages with a seq already seen but other content (a new boot or a device fault): kept',
      registers,
    }),
    gaps: new client.Counter({ name: 'ingest_gaps_total', help: 'Seqs that never arrived', registers }),
    rejected: new client.Counter({
      name: 'ingest_rejected_total',
      help: 'Messages rejected, by reason',
      labelNames: ['reason'] as const,
      registers,
    }),
    flushSeconds: new client.Histogram({
      name: 'ingest_flush_seconds',
      help: 'Time to store one batch (archive, time series, registry, dedup state)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    lag: new client.Histogram({
      name: 'ingest_lag_seconds',
      help: 'From the message ts (set by the device) to stored: end-to-end latency, device clock skew included',
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 2, 5, 10, 30, 60, 300],
      registers,
    }),
    batchSize: new client.Histogram({
      name: 'ingest_batch_size',
      help: 'Messages per stored batch',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000],
      registers,
    }),
    storeErrors: new client.Counter({
      name: 'ingest_store_errors_total',
      help: 'Failed attempts to store a batch (retried)',
      registers,
    }),
    quarantined: new client.Counter({
      name: 'ingest_quarantined_total',
      help: 'Messages kept in ingest_quarantine: their device failed to store while others stored',
      registers,
    }),
    inflight: new client.Gauge({
      name: 'ingest_inflight',
      help: 'Messages acknowledged to the broker and journaled, not yet stored',
      registers,
    }),
    bufferedBytes: new client.Gauge({
      name: 'ingest_buffered_bytes',
      help: 'Memory the admission limits count: pending (journaled, not stored; INGEST_MAX_PENDING_BYTES), archive (lines not yet written; ARCHIVE_BUFFER_MAX_BYTES), held (messages waiting for room, not yet journaled)',
      labelNames: ['what'] as const,
      registers,
    }),
    paused: new client.Gauge({
      name: 'ingest_paused',
      help: '1 while intake waits for the store',
      registers,
    }),
    devicesOnline: new client.Gauge({ name: 'devices_online', help: 'Devices online', registers }),
    mqttConnected: new client.Gauge({
      name: 'mqtt_connected',
      help: '1 while the connection to a broker is up',
      labelNames: ['broker'] as const,
      registers,
    }),
  }
}

export type IngestMetrics = ReturnType<typeof createIngestMetrics>
