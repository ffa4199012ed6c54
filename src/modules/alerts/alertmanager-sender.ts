import type { Alert } from './schemas.ts'
import { postJson } from './webhook-sender.ts'

/** One alert of Alertmanager's v2 API (POST /api/v2/alerts). */
export interface AlertmanagerAlert {
  labels: Record<string, string>
  annotations: Record<string, string>
  startsAt: string
  endsAt?: string
}

/**
 * Maps an alert to Alertmanager's model. The labels identify it (alert_id included: an alert
 * raised again after it closed is a new one); a closed alert (resolved or acknowledged) carries
 * endsAt, an open one endsAt = now + `firingForMs`, renewed by the resend loop, as Prometheus does
 * — so alerts of a server that died resolve by themselves.
 */
export function toAlertmanager(alert: Alert, firingForMs: number, now = Date.now()): AlertmanagerAlert {
  const endedAt = alert.resolved_at ?? alert.acknowledged_at
  const annotations: Record<string, string> = { summary: alert.message }
  if (alert.details) annotations.details = JSON.stringify(alert.details).slice(0, 4000)
  return {
    labels: {
      alertname: alert.alert_type,
      device_id: alert.device_id,
      severity: alert.severity,
      alert_id: String(alert.id),
      source: 'iot-meter',
    },
    annotations,
    startsAt: alert.created_at,
    endsAt: endedAt ?? new Date(now + firingForMs).toISOString(),
  }
}

export function sendToAlertmanager(baseUrl: string, alerts: AlertmanagerAlert[], timeoutMs: number) {
  const url = `${baseUrl.replace(/\/+$/, '')}/api/v2/alerts`
  return postJson(url, JSON.stringify(alerts), {}, timeoutMs)
}
