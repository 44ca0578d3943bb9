// Payments: every node's gateways (GET /admin/v1/payments) — breaker, outcome counts, refunds,
// failovers, latency — polled every two seconds.

import { get } from './api.js';
import { h, ms, poll, render, table } from './ui.js';

export function mount(main) {
  const box = h('div', { id: 'payments' });
  render(main, h('h1', { text: 'Payments' }), box);
  return poll(async () => {
    let p;
    try {
      p = await get('/admin/v1/payments');
    } catch (e) {
      render(box, h('p', { class: 'error', text: `Payments unavailable: ${e}` }));
      return;
    }
    render(box, (p.nodes ?? []).map((n) => h('section', { 'data-node': n.node_id },
      h('h2', { text: n.node_id }),
      table([
        { label: 'Gateway', cell: (g) => g.name },
        { label: 'Breaker', cell: (g) => h('span', { class: `badge breaker-${g.breaker}`, text: g.breaker.replace('_', '-') }) },
        { label: 'Approved', cell: (g) => String(g.calls?.approved ?? 0), num: true },
        { label: 'Declined', cell: (g) => String(g.calls?.declined ?? 0), num: true },
        { label: 'Failed', cell: (g) => String(g.calls?.failed ?? 0), num: true },
        { label: 'Unknown', cell: (g) => String(g.calls?.unknown ?? 0), num: true },
        { label: 'Refunds', cell: (g) => String(g.refunds ?? 0), num: true },
        { label: 'Failovers', cell: (g) => String(g.failovers ?? 0), num: true },
        { label: 'p50', cell: (g) => ms(g.latency_ms?.p50), num: true },
        { label: 'p99', cell: (g) => ms(g.latency_ms?.p99), num: true },
      ], n.gateways ?? [], { empty: 'No gateways configured.' }))),
    (p.errors ?? []).length ? h('p', { class: 'error', text: p.errors.map((e) => `${e.node_id}: ${e.message}`).join('; ') }) : null);
  }, 2000);
}
