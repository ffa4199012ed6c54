import { api, qs } from '../api.js'
import { field, h, panel, select, statusLine } from '../dom.js'
import { acknowledge, alertTable } from './alert-list.js'

const REFRESH_MS = 10_000

/** The device's alerts (open by default) with acknowledge buttons. */
export function alertsPanel({ scope, base }) {
  const filter = select(
    [
      ['false', 'Open'],
      ['', 'All'],
      ['true', 'Acknowledged'],
    ],
    'false',
  )
  const status = statusLine()
  const list = h('div', {})
  const section = panel(
    'device-alerts',
    'Alerts',
    h(
      'form',
      { class: 'filters', onsubmit: (e) => e.preventDefault() },
      field('device-alerts-filter', 'Show', filter),
    ),
    status.el,
    list,
  )
  const onAck = async (alert) => {
    await acknowledge(alert, status)
    poll.now()
  }
  const poll = scope.every(REFRESH_MS, async () => {
    try {
      const alerts = await api(`${base}/alerts${qs({ acknowledged: filter.value })}`, {
        signal: scope.signal,
      })
      list.replaceChildren(
        alertTable(alerts.slice(0, 50), {
          onAck,
          emptyText: filter.value === 'false' ? 'No open alerts for this device.' : 'No alerts.',
        }),
      )
    } catch (error) {
      if (error.name !== 'AbortError') status.error(error.message)
      throw error
    }
  })
  filter.addEventListener('change', () => poll.now())
  return section
}
