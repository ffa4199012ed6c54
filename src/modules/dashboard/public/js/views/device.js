import { ApiError, api } from '../api.js'
import { announce, empty, h, statusLine } from '../dom.js'
import { dateTime, since, time } from '../format.js'
import { connectionBadge } from './badges.js'
import { alertsPanel } from './device-alerts.js'
import { chartsPanel } from './device-charts.js'
import { commandsPanel } from './device-commands.js'
import { energyPanel } from './device-energy.js'
import { archivePanel, configPanel } from './device-records.js'

const REFRESH_MS = 5000

function configSummary(config = {}) {
  const parts = []
  if (config.sampling_cadence_ms) parts.push(`sampling ${config.sampling_cadence_ms} ms`)
  if (config.send_interval_s) parts.push(`send every ${config.send_interval_s} s`)
  if (config.hello_interval_s) parts.push(`hello every ${config.hello_interval_s} s`)
  if (Array.isArray(config.brokers)) parts.push(`${config.brokers.length} broker(s)`)
  return parts.join(' · ') || '—'
}

function header(d) {
  const ago = since(d.last_seen)
  const item = (term, value) => h('div', {}, h('dt', {}, term), h('dd', {}, value))
  return h(
    'div',
    { class: 'device-head' },
    h('h1', { id: 'device-h' }, d.device_name, ' ', connectionBadge(d.connection_status)),
    h('p', { class: 'muted' }, [d.device_id, d.device_type, d.location].filter(Boolean).join(' · ')),
    h(
      'dl',
      { class: 'facts' },
      item('Firmware', d.fw_version ?? '—'),
      item('Last seen', d.last_seen ? `${dateTime(d.last_seen)} (${ago} ago)` : 'never'),
      item('Supply', String(d.metadata?.supply ?? d.metadata?.voltage_system ?? '—')),
      item('Configuration', configSummary(d.config)),
    ),
  )
}

/** One device: live charts, energy, alerts, commands, configuration history and raw archive. */
export function deviceView(root, { scope, params, query }) {
  const [deviceId] = params
  const base = `/api/devices/${encodeURIComponent(deviceId)}`
  const head = h('div', {}, h('h1', { id: 'device-h' }, deviceId))
  const updated = statusLine({ live: false })
  const body = h('div', { class: 'device-body' })
  root.append(
    h(
      'section',
      { class: 'view device', 'aria-labelledby': 'device-h' },
      h(
        'nav',
        { class: 'crumbs', 'aria-label': 'Breadcrumb' },
        h('a', { href: '#/fleet' }, 'Fleet'),
        ' / ',
        deviceId,
      ),
      head,
      updated.el,
      body,
    ),
  )
  // `events`: the panels tell each other about changes (e.g. an accepted update_config → new history entry).
  const ctx = { scope, base, deviceId, device: null, query, events: new EventTarget() }
  let mounted = false
  scope.every(REFRESH_MS, async () => {
    try {
      const device = await api(base, { signal: scope.signal })
      const before = ctx.device?.connection_status
      if (before && before !== device.connection_status)
        announce(`${deviceId} is now ${device.connection_status}`)
      ctx.device = device
      head.replaceChildren(header(device))
      updated.ok(`Updated ${time(new Date().toISOString())}`)
      if (!mounted) {
        mounted = true
        body.append(
          chartsPanel(ctx),
          h('div', { class: 'grid-2' }, energyPanel(ctx), alertsPanel(ctx)),
          commandsPanel(ctx),
          h('div', { class: 'grid-2' }, configPanel(ctx), archivePanel(ctx)),
        )
      }
    } catch (error) {
      if (error instanceof ApiError && error.status === 404 && !mounted) {
        head.replaceChildren(h('h1', { id: 'device-h' }, 'Device not found'))
        body.replaceChildren(
          empty(`No device "${deviceId}" is registered. `, h('a', { href: '#/fleet' }, 'Back to the fleet')),
        )
        scope.dispose()
        return
      }
      if (error.name !== 'AbortError') updated.error(error.message)
      throw error
    }
  })
}
