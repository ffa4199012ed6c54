import { api } from '../api.js'
import { announce, empty, h, table } from '../dom.js'
import { dateTime } from '../format.js'
import { canOperate } from '../session.js'
import { severityBadge } from './badges.js'

/** POST /api/alerts/{id}/acknowledge; reports success or the server's reason on `status`. */
export async function acknowledge(alert, status) {
  try {
    await api(`/api/alerts/${alert.id}/acknowledge`, { method: 'POST' })
    status.ok(`Alert ${alert.id} (${alert.alert_type}) acknowledged.`)
    announce(`Alert ${alert.id} acknowledged`)
    return true
  } catch (error) {
    status.error(`Could not acknowledge alert ${alert.id}: ${error.message}`)
    return false
  }
}

function stateCell(alert, onAck) {
  if (alert.acknowledged)
    return h('span', { class: 'muted' }, `acknowledged ${dateTime(alert.acknowledged_at)}`)
  if (!canOperate()) return h('span', { class: 'muted' }, 'open')
  return h(
    'button',
    {
      type: 'button',
      class: 'small',
      'aria-label': `Acknowledge alert ${alert.id}: ${alert.alert_type}`,
      onclick: (event) => {
        event.currentTarget.disabled = true
        onAck(alert)
      },
    },
    'Acknowledge',
  )
}

/** A table of alerts; `showDevice` adds a column linking each alert to its device. */
export function alertTable(alerts, { onAck, showDevice = false, emptyText = 'No alerts.' }) {
  if (alerts.length === 0) return empty(emptyText)
  const headers = [
    ...(showDevice ? ['Device'] : []),
    'Severity',
    'Type',
    'Message',
    'Raised',
    'Seen',
    'State',
  ]
  const rows = alerts.map((a) => [
    ...(showDevice ? [h('a', { href: `#/device/${encodeURIComponent(a.device_id)}` }, a.device_id)] : []),
    severityBadge(a.severity),
    a.alert_type,
    a.message,
    dateTime(a.created_at),
    a.occurrences > 1 ? `${a.occurrences}×, last ${dateTime(a.last_seen_at)}` : '1×',
    stateCell(a, onAck),
  ])
  return table('Alerts', headers, rows, (i) => ({
    dataset: { alertId: alerts[i].id, acknowledged: String(alerts[i].acknowledged) },
  }))
}
