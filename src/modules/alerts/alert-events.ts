import { type Static, Type } from 'typebox'
import { IsoTime, toIso } from '../../platform/schemas.ts'
import type { AlertRow } from './repository.ts'
import { Alert } from './schemas.ts'

export type AlertEventKind = 'opened' | 'updated' | 'acknowledged' | 'resolved'

/** The JSON body POSTed to each webhook (docs/ALERTS.md); `event_id` is the receiver's dedupe key. */
export const AlertEventBody = Type.Object({
  event_id: Type.String({ format: 'uuid', description: 'the same on every retry and every target' }),
  event: Type.Union([
    Type.Literal('opened'),
    Type.Literal('updated'),
    Type.Literal('acknowledged'),
    Type.Literal('resolved'),
  ]),
  occurred_at: IsoTime,
  alert: Alert,
})
export type AlertEventBody = Static<typeof AlertEventBody>

export function toAlert(row: AlertRow): Alert {
  return {
    id: Number(row.id),
    device_id: row.device_id,
    alert_type: row.alert_type,
    severity: row.severity,
    message: row.message,
    details: row.details ?? null,
    acknowledged: row.acknowledged,
    acknowledged_at: toIso(row.acknowledged_at),
    occurrences: Number(row.occurrences),
    last_seen_at: toIso(row.last_seen_at) as string,
    resolved_at: toIso(row.resolved_at),
    created_at: toIso(row.created_at) as string,
  }
}

/** Where events go: each webhook URL, and Alertmanager when configured. */
export interface AlertTargets {
  webhooks: string[]
  alertmanagerUrl?: string
}

export const ALERTMANAGER_TARGET = 'alertmanager'
export const webhookTarget = (url: string) => `webhook:${url}`

export function targetNames(targets: AlertTargets): string[] {
  const names = targets.webhooks.map(webhookTarget)
  if (targets.alertmanagerUrl) names.push(ALERTMANAGER_TARGET)
  return names
}
