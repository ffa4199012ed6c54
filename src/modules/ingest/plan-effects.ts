import type { FastifyBaseLogger } from 'fastify'
import type { AlertsService } from '../alerts/index.ts'
import { ArchiveBuffer, type RawArchive } from '../archive/index.ts'
import type { DevicesService } from '../devices/index.ts'
import type { TelemetryService } from '../telemetry/index.ts'
import type { FlushPlan } from './flush-plan.ts'
import type { ParsedMessage } from './parse-message.ts'

type CommandAckReport = Extract<ParsedMessage, { category: 'command_ack' }>['ack']
type OtaStatusReport = Extract<ParsedMessage, { category: 'ota_status' }>['ota']

/** What the commands module takes from the ingest (acks, OTA progress, firmware seen in hellos). */
export interface CommandSink {
  handleAck(deviceId: string, ack: CommandAckReport): Promise<void>
  handleOtaStatus(deviceId: string, ota: OtaStatusReport): Promise<void>
  handleHello(deviceId: string, fwVersion: string, uptimeS?: number): Promise<void>
}

export interface EffectsOptions {
  archive: RawArchive
  telemetry: TelemetryService
  devices: DevicesService
  alerts: AlertsService
  commands?: CommandSink
  log: FastifyBaseLogger
  /** Distinguishes this process's archive objects from other replicas'. */
  runId: string
}

/** What one checkpoint writes, taken out of the buffers at its start (see IngestPipeline). */
export interface CheckpointWork {
  write(): Promise<void>
  /** Gives back what was not written, for the next checkpoint. */
  restore(): void
}

type Activity = FlushPlan['activity'] extends Map<number, infer A> ? A : never

/**
 * Carries out flush plans. Per batch: the time series (they must succeed: an error fails the
 * batch, which is retried), then side effects on commands and alerts (logged, not retried). Per
 * checkpoint (about once a second): archive objects and the registry's last_seen/firmware/status,
 * so a busy fleet costs one registry UPDATE per device per second, not one per message.
 */
export class PlanEffects {
  readonly archive: ArchiveBuffer
  private activity = new Map<number, Activity>()

  constructor(private readonly o: EffectsOptions) {
    this.archive = new ArchiveBuffer(o.archive, o.runId, (deviceId, lines, err) =>
      o.log.error({ err, device_id: deviceId, lines }, 'archive lines dropped: invalid key'),
    )
  }

  /** Keeps a stored batch's archive lines and registry activity for the next checkpoint. */
  absorb(plan: FlushPlan): void {
    for (const a of plan.archive) this.archive.add(a.deviceId, a.category, a.line, a.receivedAt)
    for (const a of plan.activity.values()) this.merge(a)
  }

  private merge(a: Activity): void {
    const seen = this.activity.get(a.devicePk)
    if (!seen) {
      this.activity.set(a.devicePk, { ...a })
      return
    }
    if (a.lastSeen > seen.lastSeen) seen.lastSeen = a.lastSeen
    if (a.fwVersion) seen.fwVersion = a.fwVersion
    if (a.connection) seen.connection = a.connection
  }

  /**
   * Takes the archive lines and registry activity gathered since the last checkpoint; batches
   * stored while it writes them gather into fresh buffers.
   */
  beginCheckpoint(withArchive = true): CheckpointWork {
    // Without: registry activity only, the archive lines wait for their object period.
    const archive = withArchive ? this.archive.take() : undefined
    const activity = this.activity
    this.activity = new Map()
    let activityWritten = false
    return {
      write: async () => {
        await archive?.write()
        if (activity.size === 0 || activityWritten) return
        const changes = await this.o.devices.recordActivity([...activity.values()])
        activityWritten = true
        await this.connectionEffects(changes)
      },
      restore: () => {
        archive?.restore()
        if (activityWritten) return
        // Merge back under what arrived meanwhile (newer wins).
        const newer = this.activity
        this.activity = activity
        for (const a of newer.values()) this.merge(a)
      },
    }
  }

  async execute(plan: FlushPlan): Promise<void> {
    await this.o.telemetry.ingest(plan.datagrams)
    if (plan.gaps.length > 0) {
      await this.o.telemetry.recordGaps(
        plan.gaps.map((g) => ({
          devicePk: g.pk,
          fromSeq: g.from,
          toSeq: g.to,
          fromTs: g.fromTs,
          toTs: g.toTs,
        })),
      )
    }
    await this.sideEffects(plan)
    await this.gapFills(plan)
  }

  /** Late messages that filled recorded gaps: the sequence_gap alert is resolved once none is left. */
  private async gapFills(plan: FlushPlan) {
    if (plan.late.length === 0) return
    const fills = await this.o.telemetry.fillGaps(
      plan.late.map((l) => ({ devicePk: l.pk, seq: l.seq, ts: l.ts })),
    )
    for (const f of fills) {
      if (f.remaining > 0) continue
      const seqs = f.filled.length > 10 ? `${f.filled.slice(0, 10).join(', ')}, …` : f.filled.join(', ')
      const note = `filled by late data: ${f.filled.length} message(s) (seq ${seqs}) arrived after the grace period; energy recomputed`
      await this.attempt('resolve sequence gap', () =>
        this.o.alerts.resolve(f.devicePk, 'sequence_gap', note),
      )
    }
  }

  /** An alert on the device whose records were quarantined (see poison.ts). */
  async alertQuarantined(devicePk: number, deviceId: string, records: number, error: string): Promise<void> {
    await this.attempt('quarantine alert', () =>
      this.o.alerts.raise({
        device_pk: devicePk,
        alert_type: 'ingest_quarantined',
        severity: 'critical',
        message: `${deviceId}: ${records} message(s) could not be stored and were quarantined (GET /api/ingest/quarantine)`,
        details: { records, error: error.slice(0, 500) },
      }),
    )
  }

  private async attempt(what: string, fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn()
    } catch (err) {
      this.o.log.error({ err, what }, 'ingest side effect failed')
    }
  }

  private async connectionEffects(changes: { devicePk: number; deviceId: string; status: string }[]) {
    const { alerts } = this.o
    const attempt = this.attempt.bind(this)
    for (const c of changes) {
      if (c.status === 'online')
        await attempt('resolve offline', () => alerts.resolve(c.devicePk, 'device_offline'))
      if (c.status === 'offline') {
        await attempt('raise offline', () =>
          alerts.raise({
            device_pk: c.devicePk,
            alert_type: 'device_offline',
            severity: 'warning',
            message: `${c.deviceId} went offline (last will)`,
            details: { via: 'lwt' },
          }),
        )
      }
    }
  }

  private async sideEffects(plan: FlushPlan) {
    const { alerts, commands } = this.o
    const attempt = this.attempt.bind(this)
    if (commands) {
      for (const { deviceId, ack } of plan.acks)
        await attempt('command ack', () => commands.handleAck(deviceId, ack))
      for (const { deviceId, ota } of plan.otas)
        await attempt('ota status', () => commands.handleOtaStatus(deviceId, ota))
      for (const { deviceId, fwVersion } of plan.hellos)
        await attempt('hello', () => commands.handleHello(deviceId, fwVersion))
    }
    const outOfRange = new Map<
      number,
      { deviceId: string; items: { type: string; val: number; t: number }[] }
    >()
    for (const d of plan.datagrams) {
      if (d.outOfRange.length === 0) continue
      const entry = outOfRange.get(d.devicePk) ?? { deviceId: d.deviceId, items: [] }
      entry.items.push(...d.outOfRange)
      outOfRange.set(d.devicePk, entry)
    }
    for (const [pk, { deviceId, items }] of outOfRange) {
      const first = items[0] as { type: string; val: number; t: number }
      await attempt('out of range', () =>
        alerts.raise({
          device_pk: pk,
          alert_type: 'out_of_range',
          severity: 'warning',
          message: `${deviceId}: ${first.type} = ${first.val} outside its range (${items.length} value(s) in this batch)`,
          details: { values: items.slice(0, 20).map((i) => ({ ...i, t: new Date(i.t).toISOString() })) },
        }),
      )
    }
    for (const b of plan.badUnits) {
      await attempt('bad unit', () =>
        alerts.raise({
          device_pk: b.pk,
          alert_type: 'bad_unit',
          severity: 'warning',
          message: `${b.deviceId}: telemetry refused, ${b.detail} (the raw message is archived)`,
          details: { detail: b.detail },
        }),
      )
    }
    const gapsByDevice = new Map<number, typeof plan.gaps>()
    for (const g of plan.gaps) gapsByDevice.set(g.pk, [...(gapsByDevice.get(g.pk) ?? []), g])
    for (const [pk, gaps] of gapsByDevice) {
      const missing = gaps.reduce((n, g) => n + g.count, 0)
      await attempt('sequence gap', () =>
        alerts.raise({
          device_pk: pk,
          alert_type: 'sequence_gap',
          severity: 'warning',
          message: `${(gaps[0] as { deviceId: string }).deviceId}: ${missing} message(s) never arrived (seq ${gaps.map((g) => `${g.from}–${g.to}`).join(', ')})`,
          details: { missing, ranges: gaps.map((g) => ({ from: g.from, to: g.to })) },
        }),
      )
    }
  }
}
