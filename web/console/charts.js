// Charts: the last 15 minutes of one node's metrics (GET /admin/v1/metrics/history), refreshed
// every five seconds: request rate, p50 and p99 per route, 4xx/5xx, journal batch size and
// commit latency, Redis batch size, holds.

import { get } from './api.js';
import { lineChart } from './chart.js';
import { h, palette, poll, render } from './ui.js';

const MAX_ROUTES = 8;

export function mount(main) {
  const pick = h('select', { id: 'chart-node', name: 'node' });
  const box = h('div', { id: 'charts', class: 'charts' });
  const note = h('p', { class: 'error', id: 'chart-errors' });
  render(main, h('h1', { text: 'Charts' }),
    h('p', {}, h('label', { for: 'chart-node', text: 'Node ' }), pick, ' — last 15 minutes, 5 s steps.'),
    note, box);

  let charts = [];
  let shape = '';
  let last = null;
  const destroy = () => {
    charts.forEach((c) => c.chart.destroy());
    charts = [];
  };

  const draw = () => {
    const n = (last?.nodes ?? []).find((x) => x.node_id === pick.value) ?? last?.nodes?.[0];
    if (!n) {
      return;
    }
    const t = (n.t ?? []).map((v) => v / 1000);
    const routes = [...(n.routes ?? [])]
      .map((r) => ({ ...r, total: (r.rate ?? []).reduce((a, b) => a + (b ?? 0), 0) }))
      .sort((a, b) => b.total - a.total).slice(0, MAX_ROUTES);
    const rl = routes.map((r, i) => ({ label: `${r.method} ${r.route}`, stroke: palette[i % palette.length] }));
    const defs = [
      { title: 'Requests per second by route', unit: 'req/s', series: rl, data: routes.map((r) => r.rate) },
      { title: 'p50 latency by route', unit: 'ms', series: rl, data: routes.map((r) => r.p50_ms) },
      { title: 'p99 latency by route', unit: 'ms', series: rl, data: routes.map((r) => r.p99_ms) },
      { title: '4xx and 5xx responses per second', unit: 'resp/s', series: [{ label: '4xx', stroke: '#ff7f0e' }, { label: '5xx', stroke: '#d62728' }], data: [n.status?.['4xx'], n.status?.['5xx']] },
      { title: 'Journal batch size', unit: 'batches/txn', series: [{ label: 'batch size', stroke: '#1f77b4' }], data: [n.journal?.batch_size] },
      { title: 'Journal commit latency', unit: 'ms', series: [{ label: 'p50', stroke: '#2ca02c' }, { label: 'p99', stroke: '#d62728' }], data: [n.journal?.commit_p50_ms, n.journal?.commit_p99_ms] },
      { title: 'Redis batch size', unit: 'commands', series: [{ label: 'batch size', stroke: '#9467bd' }], data: [n.redis?.batch_size] },
      { title: 'Holds per second', unit: 'holds/s', series: [{ label: 'placed', stroke: '#1f77b4' }, { label: 'expired', stroke: '#d62728' }, { label: 'confirmed', stroke: '#2ca02c' }], data: [n.holds?.placed, n.holds?.expired, n.holds?.confirmed] },
    ];
    const s = n.node_id + '|' + defs.map((d) => d.series.map((x) => x.label).join(',')).join('|');
    if (s !== shape) {
      destroy();
      box.replaceChildren();
      shape = s;
      charts = defs.map((d) => {
        const el = h('div', { class: 'chart', role: 'img', 'aria-label': d.title });
        box.append(el);
        return { chart: lineChart(el, d.title, d.series, { unit: d.unit }) };
      });
    }
    defs.forEach((d, i) => charts[i].chart.set([t, ...d.data.map((a) => a ?? t.map(() => null))]));
  };
  pick.addEventListener('change', draw);

  const stop = poll(async () => {
    try {
      last = await get('/admin/v1/metrics/history');
    } catch (e) {
      note.textContent = `Metrics history unavailable: ${e}`;
      return;
    }
    const ids = (last.nodes ?? []).map((x) => x.node_id);
    if (ids.join() !== [...pick.options].map((o) => o.value).join()) {
      const keep = pick.value;
      pick.replaceChildren(...ids.map((id) => h('option', { value: id, text: id })));
      if (ids.includes(keep)) {
        pick.value = keep;
      }
    }
    note.textContent = (last.errors ?? []).map((e) => `${e.node_id}: ${e.message}`).join('; ');
    draw();
  }, 5000);
  return () => {
    stop();
    destroy();
  };
}
