import type { FastifyBaseLogger } from 'fastify'
import type { Kysely } from 'kysely'
import type { Database } from '../../platform/db/index.ts'
import { PeriodicTask } from '../../platform/periodic.ts'
import {
  ALERTMANAGER_TARGET,
  type AlertTargets,
  targetNames,
  toAlert,
  webhookTarget,
} from './alert-events.ts'
import { sendToAlertmanager, toAlertmanager } from './alertmanager-sender.ts'
import { claimDue, markDelivered, markFailed, type OutboxRow, pruneDelivered } from './outbox-repository.ts'
import { listAlerts } from './repository.ts'
import { sendWebhook } from './webhook-sender.ts'

export interface DeliveryOptions {
  targets: AlertTargets
  secret: string
  timeoutMs: number
  retryMinMs: number
  retryMaxMs: number
  /** Alertmanager: how often open alerts are sent again. */
  resendMs: number
  batch?: number
}

const KEEP_DELIVERED_DAYS = 7

/** Exponential backoff with ±20 % jitter, so receivers coming back are not hit by every replica at once. */
export function retryDelayMs(attempts: number, minMs: number, maxMs: number, random = Math.random): number {
  const base = Math.min(maxMs, minMs * 2 ** Math.min(30, Math.max(0, attempts - 1)))
  return Math.round(base * (0.8 + 0.4 * random()))
}

/**
 * Sends the outbox: claims due events (see claimDue: replicas never take the same row), posts
 * each to its webhook (one signed POST per event) or to Alertmanager (one POST per batch), marks
 * them delivered, or schedules the next attempt. Nothing is ever dropped: a receiver that stays
 * down sees its events once it is back, in order per alert.
 */
export class AlertDeliveryWorker {
  private readonly periodic = new PeriodicTask(
    () => this.tick(),
    (err) => this.log.warn({ err }, 'alert delivery failed; will retry'),
  )
  private readonly targets: string[]
  private readonly webhookUrls = new Map<string, string>()
  private lastResend = 0
  private lastPrune = 0

  constructor(
    private readonly db: Kysely<Database>,
    private readonly options: DeliveryOptions,
    private readonly log: FastifyBaseLogger,
  ) {
    this.targets = targetNames(options.targets)
    for (const url of options.targets.webhooks) this.webhookUrls.set(webhookTarget(url), url)
  }

  get enabled(): boolean {
    return this.targets.length > 0
  }

  start(everyMs: number): void {
    if (this.enabled) this.periodic.start(everyMs)
  }

  stop(): Promise<void> {
    return this.periodic.stop()
  }

  private async tick(): Promise<void> {
    while ((await this.deliverDue()) > 0) {}
    const now = Date.now()
    if (this.options.targets.alertmanagerUrl && now - this.lastResend >= this.options.resendMs) {
      this.lastResend = now
      await this.resendOpen()
    }
    if (now - this.lastPrune >= 3_600_000) {
      this.lastPrune = now
      await pruneDelivered(this.db, KEEP_DELIVERED_DAYS)
    }
  }

  /** One round: claims a batch and sends it; returns how many were delivered. */
  async deliverDue(): Promise<number> {
    const { timeoutMs } = this.options
    const rows = await claimDue(this.db, this.targets, this.options.batch ?? 100, 2 * timeoutMs + 5000)
    if (rows.length === 0) return 0
    const toAm = rows.filter((r) => r.target === ALERTMANAGER_TARGET)
    const toHooks = rows.filter((r) => r.target !== ALERTMANAGER_TARGET)
    const delivered: number[] = []
    await Promise.all([
      ...toHooks.map(async (row) => {
        const url = this.webhookUrls.get(row.target) as string
        if (
          await this.attempt(row, () =>
            sendWebhook(url, this.options.secret, row.body, row.attempts, timeoutMs),
          )
        )
          delivered.push(row.id)
      }),
      (async () => {
        if (toAm.length === 0) return
        const firingForMs = 4 * this.options.resendMs
        const send = () =>
          sendToAlertmanager(
            this.options.targets.alertmanagerUrl as string,
            toAm.map((r) => toAlertmanager(r.body.alert, firingForMs)),
            timeoutMs,
          )
        // One POST for the batch: it succeeds or fails as a whole.
        const ok = await this.attempt(toAm[0] as OutboxRow, send, toAm.slice(1))
        if (ok) delivered.push(...toAm.map((r) => r.id))
      })(),
    ])
    await markDelivered(this.db, delivered)
    return delivered.length
  }

  private async attempt(row: OutboxRow, send: () => Promise<void>, alsoFailed: OutboxRow[] = []) {
    try {
      await send()
      return true
    } catch (err) {
      const reason = (err as Error).message
      for (const r of [row, ...alsoFailed]) {
        const delay = retryDelayMs(r.attempts, this.options.retryMinMs, this.options.retryMaxMs)
        await markFailed(this.db, r.id, delay, reason)
      }
      this.log.warn(
        { target: row.target, event_id: row.event_id, attempts: row.attempts, reason },
        'alert delivery failed; will retry',
      )
      return false
    }
  }

  /** Alertmanager forgets alerts that are not sent again: every open one goes again, firing. */
  async resendOpen(): Promise<number> {
    const url = this.options.targets.alertmanagerUrl
    if (!url) return 0
    const open = await listAlerts(this.db, { resolved: false, acknowledged: false, limit: 10_000 })
    if (open.length === 0) return 0
    const firingForMs = 4 * this.options.resendMs
    await sendToAlertmanager(
      url,
      open.map((row) => toAlertmanager(toAlert(row), firingForMs)),
      this.options.timeoutMs,
    )
    return open.length
  }
}
