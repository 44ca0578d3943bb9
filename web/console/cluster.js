// Cluster map: the members (GET /admin/v1/cluster) and the shard map (GET /admin/v1/shards),
// polled every second; drain and undrain with a confirmation.

import { api, get } from './api.js';
import { confirmDialog, h, ms, palette, poll, render, say, table } from './ui.js';

/// A stable colour per node id: sorted ids take the palette in turn.
function colours(nodeIds) {
  const m = new Map();
  [...nodeIds].sort().forEach((id, i) => m.set(id, palette[i % palette.length]));
  return m;
}

async function act(node, verb) {
  const question = verb === 'drain'
    ? `Drain ${node}? It hands every shard it owns to the other members.`
    : `Undrain ${node}? It takes shards again.`;
  if (!(await confirmDialog(question, verb === 'drain' ? 'Drain' : 'Undrain'))) {
    return;
  }
  try {
    await api('POST', `/admin/v1/nodes/${encodeURIComponent(node)}/${verb}`, { body: {} });
    say(`${verb === 'drain' ? 'Draining' : 'Undrained'} ${node}.`);
  } catch (e) {
    say(e.status === 409 ? `Refused (409 ${e.code}): ${e.message}` : e, 'error');
  }
}

export function mount(main) {
  const members = h('div', { id: 'members' });
  const grid = h('div', { id: 'shard-grid', class: 'grid', role: 'list', 'aria-label': 'Shards by owner' });
  const legend = h('ul', { class: 'legend', id: 'legend', 'aria-label': 'Owners' });
  const summary = h('p', { id: 'cluster-summary' });
  render(main, h('h1', { text: 'Cluster' }), summary, h('h2', { text: 'Members' }), members,
    h('h2', { text: 'Shards' }), legend, grid);

  let nodes = [];
  const drawMembers = (c) => {
    nodes = c.nodes ?? [];
    summary.textContent = `${nodes.length} members, ${c.shards} shards; this page is served by ${c.this_node ?? '?'}.`;
    render(members, table([
      { label: 'Node', cell: (n) => n.node_id },
      { label: 'Status', cell: (n) => h('span', { class: `badge ${n.status}`, text: n.status }) },
      { label: 'Heartbeat age', cell: (n) => ms(n.heartbeat_age_ms), num: true },
      { label: 'Shards', cell: (n) => String(n.shards ?? 0), num: true },
      { label: 'Actors', cell: (n) => String(n.actors ?? 0), num: true },
      { label: 'Version', cell: (n) => n.version ?? '–' },
      { label: 'Admin address', cell: (n) => n.admin_address ?? '–' },
      {
        label: 'Actions',
        cell: (n) => n.status === 'left' || n.status === 'down' ? '' : n.status === 'draining'
          ? h('button', { type: 'button', 'aria-label': `Undrain ${n.node_id}`, text: 'Undrain', onclick: () => act(n.node_id, 'undrain') })
          : h('button', { type: 'button', 'aria-label': `Drain ${n.node_id}`, text: 'Drain', onclick: () => act(n.node_id, 'drain') }),
      },
    ], nodes, { rowAttrs: (n) => ({ 'data-node': n.node_id, 'data-status': n.status }) }));
  };

  const drawShards = (s) => {
    const rows = s.shards ?? [];
    const owners = new Set(nodes.map((n) => n.node_id));
    rows.forEach((r) => r.owner && owners.add(r.owner));
    const col = colours(owners);
    const counts = new Map();
    const cells = rows.map((r) => {
      counts.set(r.owner, (counts.get(r.owner) ?? 0) + 1);
      const moving = r.target && r.target !== r.owner ? `, moving to ${r.target}` : '';
      const title = `shard ${r.shard}: ${r.owner || 'no owner'}, epoch ${r.epoch}${moving}`;
      return h('div', {
        class: `cell${moving ? ' moving' : ''}`, role: 'listitem', title, 'aria-label': title,
        'data-owner': r.owner || '', style: `background:${r.owner ? col.get(r.owner) : '#ddd'}`,
      });
    });
    grid.replaceChildren(...cells);
    render(legend, [...col.entries()].map(([id, c]) => h('li', {},
      h('span', { class: 'swatch', style: `background:${c}` }), `${id}: ${counts.get(id) ?? 0}`)));
  };

  return poll(async () => {
    const [c, s] = await Promise.all([get('/admin/v1/cluster'), get('/admin/v1/shards')]);
    drawMembers(c);
    drawShards(s);
  }, 1000);
}
