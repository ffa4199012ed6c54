import { api, qs } from '../api.js'
import { lineChart } from '../chart.js'
import { h, panel, statusLine } from '../dom.js'
import { time } from '../format.js'
import { setQuery } from '../router.js'

/** Each range is drawn from windowed means (`every`), so a chart holds at most a few hundred points. */
const RANGES = {
  '15m': { label: '15 min', start: '-15m', every: '5s', stepMs: 5_000, refreshMs: 5_000 },
  '1h': { label: '1 h', start: '-1h', every: '15s', stepMs: 15_000, refreshMs: 15_000 },
  '24h': { label: '24 h', start: '-24h', every: '5m', stepMs: 300_000, refreshMs: 60_000 },
  '7d': { label: '7 d', start: '-7d', every: '30m', stepMs: 1_800_000, refreshMs: 300_000 },
}

const rangeMs = (r) =>
  Number(r.start.slice(1, -1)) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[r.start.at(-1)]

/** AC meters measure voltage_ac/current_ac, DC meters voltage_dc/current_dc. */
export function supplyKind(device) {
  const hint = `${device.device_type ?? ''} ${device.metadata?.voltage_system ?? ''} ${device.metadata?.supply ?? ''}`
  return /(^|[\s_])ac($|[\s_\d])/i.test(hint) ? 'ac' : 'dc'
}

function seriesFor(kind) {
  return [
    {
      metric: `voltage_${kind}`,
      label: `Voltage ${kind.toUpperCase()}`,
      unit: 'V',
      color: '#2563eb',
      digits: 0,
    },
    {
      metric: `current_${kind}`,
      label: `Current ${kind.toUpperCase()}`,
      unit: 'A',
      color: '#d97706',
      digits: 1,
    },
    {
      metric: 'power_active',
      label: 'Active power',
      unit: 'kW',
      color: '#059669',
      scale: 1 / 1000,
      digits: 1,
    },
  ]
}

/** Voltage, current and active power of the device, refreshed while the page is open. */
export function chartsPanel({ scope, base, device, query }) {
  let range = RANGES[query.get('range')] ? query.get('range') : '15m'
  const status = statusLine({ live: false })
  const note = h('p', { class: 'hint' })
  const group = h(
    'fieldset',
    { class: 'segmented' },
    h('legend', {}, 'Time range'),
    Object.entries(RANGES).map(([key, r]) =>
      h(
        'label',
        {},
        h('input', {
          type: 'radio',
          name: 'range',
          value: key,
          checked: key === range,
          onchange: () => choose(key),
        }),
        h('span', {}, r.label),
      ),
    ),
  )
  const grid = h('div', { class: 'charts' })
  const section = panel(
    'charts',
    'Live measurements',
    h('div', { class: 'panel-tools' }, group, status.el),
    note,
    grid,
  )
  const series = seriesFor(supplyKind(device))
  const charts = series.map((s) => {
    const box = h('div', {})
    grid.append(h('figure', { class: 'chart-card' }, h('figcaption', {}, `${s.label} (${s.unit})`), box))
    return { ...s, box, chart: null }
  })
  scope.onDispose(() => {
    for (const c of charts) c.chart?.destroy()
  })

  let generation = 0
  async function load() {
    const gen = ++generation
    const r = RANGES[range]
    try {
      const results = await Promise.all(
        charts.map((c) =>
          api(
            `${base}/metrics${qs({ metric: c.metric, start: r.start, every: r.every, fn: 'mean', limit: 5000 })}`,
            {
              signal: scope.signal,
            },
          ),
        ),
      )
      if (gen !== generation) return
      const now = Date.now()
      // The axis spans the whole range, except the leading part before the device's first data.
      const firsts = results.filter((p) => p.length > 0).map((p) => Date.parse(p[0].time))
      const from = Math.max(now - rangeMs(r), Math.min(...firsts, now) - r.stepMs)
      note.textContent = `Last ${r.label}: mean of every ${r.every} window; refreshed every ${r.refreshMs / 1000} s.${
        from > now - rangeMs(r) + r.stepMs
          ? ` No data before ${time(new Date(from + r.stepMs).toISOString())}.`
          : ''
      }`
      results.forEach((points, i) => {
        const c = charts[i]
        // Created on first data so uPlot measures the laid-out width.
        c.chart ??= lineChart(c.box, c)
        c.chart.update(points, r.stepMs, [from, now])
      })
      status.ok(`Updated ${time(new Date().toISOString())}`)
    } catch (error) {
      if (error.name !== 'AbortError') status.error(error.message)
      throw error
    }
  }
  const poll = scope.every(() => RANGES[range].refreshMs, load)
  function choose(key) {
    range = key
    setQuery({ range: key === '15m' ? '' : key })
    poll.now()
  }
  return section
}
