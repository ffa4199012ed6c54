import type { FastifyBaseLogger } from 'fastify'
import { PeriodicTask } from '../../platform/periodic.ts'
import type { AlertsService } from '../alerts/index.ts'
import type { DevicesService } from '../devices/index.ts'

/**
 * REQ-ONLINE-001 sweeper: devices silent for 2 × max(send, hello interval) of their own
 * configuration are marked offline (in the database, so replicas agree) with one alert each.
 */
export class LivenessSweeper {
  private readonly periodic = new PeriodicTask(
    () => this.sweep(),
    (err) => this.log.warn({ err }, 'liveness sweep failed; will retry'),
  )

  constructor(
    private readonly devices: DevicesService,
    private readonly alerts: AlertsService,
    private readonly log: FastifyBaseLogger,
    private readonly onSweep: () => Promise<void> = async () => {},
  ) {}

  async sweep(now = new Date()): Promise<number> {
    const gone = await this.devices.markSilentOffline(now)
    for (const d of gone) {
      await this.alerts.raise({
        device_pk: d.devicePk,
        alert_type: 'device_offline',
        severity: 'warning',
        message: `${d.deviceId} sent nothing for more than ${d.timeoutS} s`,
        details: { last_seen: new Date(d.lastSeen).toISOString(), timeout_s: d.timeoutS },
      })
    }
    await this.onSweep()
    return gone.length
  }

  start(everyMs: number): void {
    this.periodic.start(everyMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }
}
