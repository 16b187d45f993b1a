// The simulator's printed report. It is built from the SimulationResult alone, so `--json` carries
// everything the table shows (sends and scripted events share one order, `n`).
import type { SimulationResult } from './simulate';

/** Left-aligned columns, each as wide as its widest cell; trailing blanks trimmed. */
function table(rows: string[][], indent = '  '): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, c.length)));
  return rows.map((r) => (indent + r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  ')).trimEnd());
}

const minute = (at: string) => at.replace('T', ' ').slice(0, 16);

export function formatSimulation(r: SimulationResult): string {
  const lines = [`Cadence "${r.name}" (${r.cadence}): simulated ${minute(r.start)} .. ${minute(r.until)} UTC`, '', 'Timeline'];
  const rows = [
    ...r.timeline.map((t) => ({ n: t.n, cells: [minute(t.at), t.record, t.channel, t.step, t.to ?? '', t.subject ? `"${t.subject}"` : ''] })),
    ...r.events.map((e) => ({ n: e.n, cells: [minute(e.at), e.record, e.item < 0 ? '!' : '<-', e.what, '', ''] })),
  ].sort((a, b) => a.n - b.n);
  if (rows.length) lines.push(...table([['when (UTC)', 'record', 'channel', 'follow-up / event', 'to', 'subject'], ...rows.map((x) => x.cells)]));
  else lines.push('  (nothing sent)');
  lines.push('', 'Endings');
  const ends = [
    ...r.endings.map((e) => [e.record, e.status, `${e.reason}${e.status === 'active' && e.position ? ` (at ${e.position})` : ''}`]),
    ...r.skipped.map((s) => [s.record, 'skipped', `${s.reason}${s.rule ? ` (${s.rule})` : ''}`]),
  ];
  lines.push(...(ends.length ? table(ends) : ['  (no records)']));
  if (r.notReached.length) {
    lines.push('', 'Scripted but never reached');
    lines.push(...table(r.notReached.map((x) => [`timeline[${x.item}]`, x.record ?? '', x.what, x.reason])));
  }
  return lines.join('\n');
}
