import { api, qs } from '../api.js'
import { field, h, onSubmit, select, statusLine } from '../dom.js'
import { time } from '../format.js'
import { setQuery } from '../router.js'
import { acknowledge, alertTable } from './alert-list.js'

const PAGE = 50
const REFRESH_MS = 10_000
const SEVERITIES = ['info', 'warning', 'error', 'critical']
const TYPES = [
  'device_offline',
  'sequence_gap',
  'out_of_range',
  'command_timeout',
  'ota_failed',
  'fw_mismatch',
  'general',
]

/** Fleet-wide alerts with filters, paging and acknowledge. */
export function alertsView(root, { scope, query }) {
  const state = {
    acknowledged: query.get('acknowledged') ?? 'false',
    severity: query.get('severity') ?? '',
    alert_type: query.get('alert_type') ?? '',
    device_id: query.get('device_id') ?? '',
    page: Number(query.get('page') ?? 0) || 0,
  }
  const ackSelect = select(
    [
      ['false', 'Open'],
      ['true', 'Acknowledged'],
      ['all', 'All'],
    ],
    state.acknowledged,
  )
  const sevSelect = select([['', 'Any'], ...SEVERITIES.map((s) => [s, s])], state.severity)
  const typeSelect = h('input', {
    type: 'search',
    value: state.alert_type,
    list: 'alert-types',
    placeholder: 'any',
    pattern: '[a-z][a-z0-9_]{0,63}',
  })
  const device = h('input', {
    type: 'search',
    value: state.device_id,
    placeholder: 'e.g. sim-dc-0001',
    pattern: '[A-Za-z0-9_.\\-]{1,64}',
  })
  const status = statusLine()
  const updated = statusLine({ live: false })
  const list = h('div', {})
  const prev = h('button', { type: 'button', class: 'secondary', onclick: () => turn(-1) }, '← Previous')
  const next = h('button', { type: 'button', class: 'secondary', onclick: () => turn(1) }, 'Next →')
  const pageLabel = h('span', { 'aria-live': 'polite' })

  function apply() {
    if (!device.checkValidity()) return status.error('Device id: letters, digits, "_", "." and "-" only.')
    if (!typeSelect.checkValidity()) return status.error('Type: lower-case letters, digits and "_".')
    Object.assign(state, {
      acknowledged: ackSelect.value,
      severity: sevSelect.value,
      alert_type: typeSelect.value.trim(),
      device_id: device.value.trim(),
      page: 0,
    })
    sync()
  }
  function turn(delta) {
    state.page = Math.max(0, state.page + delta)
    sync()
  }
  function sync() {
    setQuery({ ...state, page: state.page || '' })
    poll.now()
  }
  for (const control of [ackSelect, sevSelect, typeSelect]) control.addEventListener('change', apply)
  const onAck = async (alert) => {
    await acknowledge(alert, status)
    poll.now()
  }

  root.append(
    h(
      'section',
      { class: 'view alerts', 'aria-labelledby': 'alerts-h' },
      h('div', { class: 'view-head' }, h('h1', { id: 'alerts-h' }, 'Alerts'), updated.el),
      h(
        'form',
        { class: 'filters', role: 'search', onsubmit: onSubmit(apply) },
        field('alerts-state', 'State', ackSelect),
        field('alerts-severity', 'Severity', sevSelect),
        field('alerts-type', 'Type', typeSelect),
        h(
          'datalist',
          { id: 'alert-types' },
          TYPES.map((t) => h('option', { value: t })),
        ),
        field('alerts-device', 'Device', device),
        h('button', { type: 'submit', class: 'secondary' }, 'Apply'),
      ),
      status.el,
      list,
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next),
    ),
  )

  const poll = scope.every(REFRESH_MS, async () => {
    try {
      const acknowledged = state.acknowledged === 'all' ? '' : state.acknowledged
      const alerts = await api(
        `/api/alerts${qs({ ...state, acknowledged, page: undefined, limit: PAGE + 1, offset: state.page * PAGE })}`,
        { signal: scope.signal },
      )
      prev.disabled = state.page === 0
      next.disabled = alerts.length <= PAGE
      pageLabel.textContent = `Page ${state.page + 1}`
      list.replaceChildren(
        alertTable(alerts.slice(0, PAGE), {
          onAck,
          showDevice: true,
          emptyText:
            state.acknowledged === 'false' ? 'No open alerts. All clear.' : 'No alerts match these filters.',
        }),
      )
      updated.ok(`Updated ${time(new Date().toISOString())}`)
    } catch (error) {
      if (error.name !== 'AbortError') updated.error(error.message)
      throw error
    }
  })
}
