import { createHmac } from 'node:crypto'
import type { AlertEventBody } from './alert-events.ts'

export const SIGNATURE_HEADER = 'x-iot-meter-signature'

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, t + "." + body)>`: the timestamp is signed with
 * the body, so a receiver can refuse a replayed delivery older than its tolerance (docs/ALERTS.md).
 */
export function signWebhook(secret: string, body: string, unixS: number): string {
  const mac = createHmac('sha256', secret).update(`${unixS}.${body}`).digest('hex')
  return `t=${unixS},v1=${mac}`
}

/** Throws unless the receiver answered 2xx within the timeout; the error says why (it is kept as last_error). */
export async function postJson(
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<void> {
  let response: Response
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'error',
    })
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code
    throw new Error(`${(err as Error).message}${cause ? ` (${cause})` : ''}`)
  }
  const text = await response.text().catch(() => '')
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${text.slice(0, 200)}`)
}

/** POSTs one event, signed, to one webhook. */
export function sendWebhook(
  url: string,
  secret: string,
  event: AlertEventBody,
  attempt: number,
  timeoutMs: number,
): Promise<void> {
  const body = JSON.stringify(event)
  return postJson(
    url,
    body,
    {
      [SIGNATURE_HEADER]: signWebhook(secret, body, Math.floor(Date.now() / 1000)),
      'x-iot-meter-event': event.event,
      'x-iot-meter-event-id': event.event_id,
      'x-iot-meter-delivery-attempt': String(attempt),
    },
    timeoutMs,
  )
}
