import { api, qs } from '../api.js'
import { energyChart } from '../chart.js'
import { field, h, onSubmit, panel, select, statusLine } from '../dom.js'
import { kwh, localDay, number, percent, time, todayValue } from '../format.js'

const REFRESH_MS = 30_000
const STEP_MS = { '5m': 300_000, '15m': 900_000, '1h': 3_600_000 }

function totalsList(t) {
  const item = (term, value, key) =>
    h('div', {}, h('dt', {}, term), h('dd', { dataset: { total: key } }, value))
  return h(
    'dl',
    { class: 'totals' },
    item('Traction (import)', kwh(t.import_kwh), 'import'),
    item('Regenerated (export)', kwh(t.export_kwh), 'export'),
    item('Net', kwh(t.net_kwh), 'net'),
    t.apparent_kvah === null ? null : item('Apparent', `${number(t.apparent_kvah, 3)} kVAh`, 'apparent'),
    t.reactive_kvarh === null ? null : item('Reactive', `${number(t.reactive_kvarh, 3)} kvarh`, 'reactive'),
    item('Coverage', percent(t.coverage), 'coverage'),
  )
}

/** The energy load profile of one day: traction vs regenerated bars, totals and data coverage. */
export function energyPanel({ scope, base }) {
  const day = h('input', { type: 'date', value: todayValue(), max: todayValue(), required: true })
  const interval = select(
    [
      ['15m', '15 min'],
      ['1h', '1 hour'],
      ['5m', '5 min'],
    ],
    '15m',
  )
  const status = statusLine({ live: false })
  const totals = h('div', {})
  const box = h('div', {})
  let chart
  scope.onDispose(() => chart?.destroy())
  const section = panel(
    'energy',
    'Energy',
    h(
      'form',
      { class: 'filters', onsubmit: onSubmit(() => poll.now()) },
      field('energy-day', 'Day', day),
      field('energy-interval', 'Interval', interval),
    ),
    h('figure', { class: 'chart-card' }, h('figcaption', {}, 'Load profile (kWh per interval)'), box),
    totals,
    h(
      'p',
      { class: 'hint' },
      'Coverage: the share of the period (up to now) with measurements. Below 100 % the totals miss the gaps.',
    ),
    status.el,
  )

  async function load() {
    if (!day.value) return status.error('Choose a day.')
    const start = localDay(day.value)
    const end = new Date(start.getFullYear(), start.getMonth(), start.getDate() + 1)
    const stop = new Date(Math.min(end.getTime(), Date.now()))
    if (stop <= start) {
      totals.replaceChildren()
      return status.error('That day has not started yet.')
    }
    try {
      const answer = await api(
        `${base}/energy${qs({ start: start.toISOString(), stop: stop.toISOString(), interval: interval.value })}`,
        { signal: scope.signal },
      )
      chart ??= energyChart(box, { tractionColor: '#2563eb', regenColor: '#16a34a' })
      chart.update(answer.rows, [start.getTime(), end.getTime()], STEP_MS[answer.interval])
      totals.replaceChildren(totalsList(answer.totals))
      status.ok(`Updated ${time(new Date().toISOString())}`)
    } catch (error) {
      if (error.name !== 'AbortError') status.error(error.message)
      throw error
    }
  }
  const poll = scope.every(REFRESH_MS, load)
  day.addEventListener('change', () => poll.now())
  interval.addEventListener('change', () => poll.now())
  return section
}
