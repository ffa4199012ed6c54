import { api, qs } from '../api.js'
import { empty, field, h, onSubmit, select, statusLine, table } from '../dom.js'
import { dateTime, power, since, time } from '../format.js'
import { setQuery } from '../router.js'
import { connectionBadge } from './badges.js'

const PAGE = 25
const REFRESH_MS = 5000
/** Power is one request per online device on the page: fetched less often than the list (rate limits). */
const POWER_REFRESH_MS = 15_000

function statCard(label, value, extra = {}) {
  return h(
    'div',
    { class: `stat ${extra.class ?? ''}`, dataset: { stat: extra.key } },
    h('span', { class: 'stat-value' }, String(value)),
    h('span', { class: 'stat-label' }, label),
  )
}

function statusCell(d) {
  const ago = since(d.last_seen)
  // Offline: for how long since its last message; otherwise how fresh the last message is.
  const how = !ago ? 'never seen' : d.connection_status === 'offline' ? `for ${ago}` : `seen ${ago} ago`
  return h('span', { class: 'status-cell' }, connectionBadge(d.connection_status), h('small', {}, how))
}

/** Fleet: counts, filters, and one row per device with its latest active power. Refreshes itself. */
export function fleetView(root, { scope, query }) {
  const state = {
    status: query.get('status') ?? '',
    q: query.get('q') ?? '',
    page: Number(query.get('page') ?? 0) || 0,
  }
  const powerCache = new Map()
  const stats = h('div', { class: 'stats', role: 'group', 'aria-label': 'Fleet summary' })
  const listArea = h('div', { class: 'list-area' }, empty('Loading devices…'))
  const updated = statusLine({ live: false })
  const statusSelect = select(
    [
      ['', 'All'],
      ['online', 'Online'],
      ['offline', 'Offline'],
      ['unknown', 'Unknown'],
    ],
    state.status,
  )
  const search = h('input', {
    type: 'search',
    value: state.q,
    placeholder: 'id, name or location',
    maxlength: 100,
  })
  const prev = h('button', { type: 'button', class: 'secondary', onclick: () => turn(-1) }, '← Previous')
  const next = h('button', { type: 'button', class: 'secondary', onclick: () => turn(1) }, 'Next →')
  const pageLabel = h('span', { 'aria-live': 'polite' })

  let searchTimer
  const applyFilters = () => {
    state.status = statusSelect.value
    state.q = search.value.trim()
    state.page = 0
    setQuery({ status: state.status, q: state.q })
    poll.now()
  }
  statusSelect.addEventListener('change', applyFilters)
  search.addEventListener('input', () => {
    clearTimeout(searchTimer)
    searchTimer = setTimeout(applyFilters, 300)
  })
  scope.onDispose(() => clearTimeout(searchTimer))
  function turn(delta) {
    state.page = Math.max(0, state.page + delta)
    setQuery({ status: state.status, q: state.q, page: state.page || '' })
    poll.now()
  }

  root.append(
    h(
      'section',
      { class: 'view fleet', 'aria-labelledby': 'fleet-h' },
      h('div', { class: 'view-head' }, h('h1', { id: 'fleet-h' }, 'Fleet'), updated.el),
      stats,
      h(
        'form',
        { class: 'filters', role: 'search', onsubmit: onSubmit(applyFilters) },
        field('fleet-status', 'Connection', statusSelect),
        field('fleet-q', 'Search', search),
      ),
      listArea,
      h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, pageLabel, next),
    ),
  )

  function renderStats(s) {
    const cards = [
      statCard('devices', s.total_devices, { key: 'total' }),
      statCard('online', s.devices_online, { key: 'online', class: 'ok' }),
      statCard('offline', s.devices_offline, { key: 'offline', class: s.devices_offline ? 'bad' : '' }),
      s.devices_unknown ? statCard('never connected', s.devices_unknown, { key: 'unknown' }) : null,
      h(
        'a',
        {
          href: '#/alerts',
          class: `stat ${s.unacknowledged_alerts ? 'warn' : ''}`,
          dataset: { stat: 'alerts' },
        },
        h('span', { class: 'stat-value' }, String(s.unacknowledged_alerts)),
        h('span', { class: 'stat-label' }, 'open alerts'),
      ),
    ]
    stats.replaceChildren(...cards.filter(Boolean))
  }

  function renderDevices(devices, hasMore) {
    prev.disabled = state.page === 0
    next.disabled = !hasMore
    pageLabel.textContent = `Page ${state.page + 1}`
    if (devices.length === 0) {
      const filtered = state.status || state.q
      listArea.replaceChildren(
        filtered
          ? empty('No device matches these filters.')
          : empty(
              'No devices registered yet. Register meters with POST /api/devices, or start the server with SIMULATOR_ENABLED=true to see simulated ones.',
            ),
      )
      return
    }
    const rows = devices.map((d) => [
      h('a', { href: `#/device/${encodeURIComponent(d.device_id)}` }, d.device_id),
      d.device_name,
      d.device_type ?? '—',
      d.location ?? '—',
      statusCell(d),
      dateTime(d.last_seen),
      d.fw_version ?? '—',
      h('span', { class: 'num', dataset: { power: d.device_id } }, power(powerCache.get(d.device_id)?.value)),
    ])
    const focusedId = document.activeElement?.closest?.('tr[data-device-id]')?.dataset.deviceId
    listArea.replaceChildren(
      table(
        'Devices',
        ['Device', 'Name', 'Type', 'Location', 'Connection', 'Last seen', 'Firmware', 'Active power'],
        rows,
        (i) => ({ dataset: { deviceId: devices[i].device_id, status: devices[i].connection_status } }),
      ),
    )
    // Keep keyboard focus on the same device across refreshes.
    if (focusedId) listArea.querySelector(`tr[data-device-id="${CSS.escape(focusedId)}"] a`)?.focus()
  }

  async function loadPower(devices) {
    const now = Date.now()
    const due = devices.filter((d) => {
      if (d.connection_status !== 'online') return false
      const cached = powerCache.get(d.device_id)
      // No point yet (a device that just came up): ask again on the next refresh, not in 15 s.
      const ttl = cached?.value === undefined ? REFRESH_MS : POWER_REFRESH_MS
      return !cached || now - cached.at >= ttl
    })
    for (let i = 0; i < due.length; i += 4) {
      await Promise.all(
        due.slice(i, i + 4).map(async (d) => {
          const points = await api(
            `/api/devices/${encodeURIComponent(d.device_id)}/metrics${qs({ metric: 'power_active', start: '-5m', every: '5m', fn: 'last' })}`,
            { signal: scope.signal },
          ).catch(() => [])
          powerCache.set(d.device_id, { value: points.at(-1)?.value, at: Date.now() })
          const cell = listArea.querySelector(`[data-power="${CSS.escape(d.device_id)}"]`)
          if (cell) cell.textContent = power(points.at(-1)?.value)
        }),
      )
    }
  }

  const poll = scope.every(REFRESH_MS, async () => {
    try {
      const [s, devices] = await Promise.all([
        api('/api/stats', { signal: scope.signal }),
        api(
          `/api/devices${qs({ connection_status: state.status, q: state.q, limit: PAGE + 1, offset: state.page * PAGE })}`,
          { signal: scope.signal },
        ),
      ])
      renderStats(s)
      renderDevices(devices.slice(0, PAGE), devices.length > PAGE)
      updated.ok(`Updated ${time(new Date().toISOString())}`)
      loadPower(devices.slice(0, PAGE))
    } catch (error) {
      if (error.name !== 'AbortError') updated.error(error.message)
      throw error
    }
  })
}
