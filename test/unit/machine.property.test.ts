// Property tests of the pure machine: for random definitions, events and clocks, no enrollment ever
// dispatches after it ended, no follow-up runs twice, and the timer always agrees with the status.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { transition } from '../../engine/machine/machine';
import type { Context, Enrollment, MachineEvent } from '../../engine/machine/types';
import { OUTCOMES } from '../../engine/model/outcomes';
import type { CadenceDefinition, CadenceNode, Channel, Edge } from '../../engine/model/types';
import { validateDefinition } from '../../engine/model/validate';

const T0 = Date.parse('2026-03-02T08:00:00Z');
const channels: Channel[] = ['email', 'task', 'call'];

const stepArb = fc.record({
  channel: fc.constantFrom(...channels),
  amount: fc.integer({ min: 0, max: 3 }),
  unit: fc.constantFrom('minutes', 'hours', 'days', 'businessDays'),
  previous: fc.boolean(),
  branch: fc.option(fc.record({ pick: fc.array(fc.nat(), { minLength: 1, maxLength: 3 }), timeout: fc.boolean(), jump: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }) }), { nil: undefined }),
});

const defArb = fc.record({
  steps: fc.array(stepArb, { minLength: 1, maxLength: 6 }),
  window: fc.boolean(),
  exitOutcome: fc.option(fc.constantFrom('replied', 'busy', 'completed'), { nil: undefined }),
}).map(({ steps, window, exitOutcome }): CadenceDefinition => {
  const nodes: CadenceNode[] = [];
  const edges: Edge[] = [{ from: 'trigger', to: 's0' }];
  steps.forEach((s, i) => {
    nodes.push({ id: `s${i}`, type: 'followUp', channel: s.channel, delay: { amount: s.amount, unit: s.unit as never }, relativeTo: s.previous ? 'previous' : 'enrollment', template: { subject: 'x', body: 'x' } });
    const next = i + 1 < steps.length ? `s${i + 1}` : undefined;
    if (s.branch) {
      const outs = [...new Set(s.branch.pick.map((p) => OUTCOMES[s.channel][p % OUTCOMES[s.channel].length]))];
      nodes.push({ id: `b${i}`, type: 'outcomeBranch', outcomes: outs, timeout: s.branch.timeout ? { amount: 1, unit: 'days' } : undefined });
      edges.push({ from: `s${i}`, to: `b${i}` });
      // Each port jumps forward (acyclic by construction) or ends the path.
      [...outs, ...(s.branch.timeout ? ['timeout'] : [])].forEach((port, k) => {
        const target = i + 1 + (s.branch!.jump[k % 4] % (steps.length - i));
        if (target < steps.length) edges.push({ from: `b${i}`, port, to: `s${target}` });
      });
    } else if (next) edges.push({ from: `s${i}`, to: next });
  });
  // Keep what the trigger reaches (a jump may skip a step).
  const reach = new Set<string>();
  const walk = (id: string) => {
    for (const e of edges) if (e.from === id && !reach.has(e.to)) (reach.add(e.to), walk(e.to));
  };
  walk('trigger');
  return {
    id: 'p', name: 'property', module: 'Leads', timezone: 'UTC', enrollment: { mode: 'manual' },
    nodes: nodes.filter((n) => reach.has(n.id)), edges: edges.filter((e) => e.from === 'trigger' || reach.has(e.from)),
    sendWindow: window ? { days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' } : undefined,
    unenroll: exitOutcome ? { outcomes: [exitOutcome] } : undefined,
  };
});

const eventArb = fc.record({
  kind: fc.constantFrom('timer', 'timer', 'timer', 'delivered', 'delivered', 'delivered', 'outcome', 'outcome', 'recordChanged', 'converted', 'unenroll', 'deactivated', 'activated', 'resume', 'restart', 'deliveryFailed', 'retry'),
  dt: fc.integer({ min: 0, max: 3 * 86_400_000 }),
  exit: fc.boolean(),
  outcome: fc.nat(),
  stale: fc.boolean(),
  unsubscribed: fc.boolean(),
});

function ctx(def: CadenceDefinition, now: number, exit: boolean, unsubscribed: boolean): Context {
  return {
    now, def, timezone: 'UTC', templates: new Set(), defaultSender: 's@x.example', sentToday: {}, actionsLeft: Infinity,
    record: { id: 'r', module: 'Leads', data: { Email: 'r@x.example' }, unsubscribed },
    criteria: { exit, checks: {} },
  };
}

describe('machine properties', () => {
  it('D2 D5 F10 U8 for random definitions, events and clocks: no dispatch after the end, no follow-up twice, nothing completed undelivered, timers and cancels as effects', () => {
    fc.assert(
      fc.property(defArb, fc.array(eventArb, { maxLength: 40 }), (def, events) => {
        expect(validateDefinition(def)).toEqual([]);
        let now = T0;
        let s: Enrollment | null = transition(null, { type: 'enroll', id: 'e', version: 1, by: 'test' }, ctx(def, now, false, false)).next;
        expect(s).not.toBeNull();
        const keys = new Set<string>();
        const dispatched: string[] = [];
        for (const ev of events) {
          now += ev.dt;
          let event: MachineEvent;
          const all = [...keys];
          switch (ev.kind) {
            case 'timer':
              if (s!.dueAt !== null) now = Math.max(now, s!.dueAt); // the runtime fires a timer when it is due
              event = { type: 'timer' };
              break;
            case 'outcome': {
              const key = ev.stale && all.length ? all[ev.outcome % all.length] : s!.last?.key ?? 'none';
              const ch = s!.last?.channel ?? 'email';
              event = { type: 'outcome', key, outcome: OUTCOMES[ch][ev.outcome % OUTCOMES[ch].length] };
              break;
            }
            case 'resume':
            case 'restart':
              event = { type: 'reenroll', mode: ev.kind, version: 1, by: 'test' };
              break;
            case 'unenroll':
              event = { type: 'unenroll', by: 'test', reason: 'manual' };
              break;
            case 'deactivated':
            case 'activated':
              event = { type: ev.kind, by: 'test' };
              break;
            case 'deliveryFailed':
              event = { type: 'deliveryFailed', key: s!.last?.key ?? 'none', reason: 'bounced' };
              break;
            case 'delivered': {
              // Usually the action in flight; sometimes an old one confirmed late (D3), or twice (D2).
              const key = ev.stale && all.length ? all[ev.outcome % all.length] : s!.last?.key ?? 'none';
              event = { type: 'delivered', key };
              break;
            }
            case 'retry':
              event = { type: 'retry', by: 'test' };
              break;
            default:
              event = { type: ev.kind as 'recordChanged' | 'converted' };
          }
          const wasActive = s!.status === 'active' && s!.wait !== 'halted';
          const { next, effects } = transition(s, event, ctx(def, now, ev.exit && ev.kind === 'recordChanged', ev.unsubscribed));
          const sends = effects.filter((f) => f.type === 'dispatch');
          if (sends.length) {
            // Only a live enrollment's due timer dispatches, and only while its cadence is active.
            expect(event.type).toBe('timer');
            expect(wasActive).toBe(true);
          }
          for (const f of sends) {
            if (f.type !== 'dispatch') continue;
            expect(keys.has(f.action.key)).toBe(false);
            keys.add(f.action.key);
            dispatched.push(f.action.key);
          }
          const prev = s!;
          s = next;
          expect(s).not.toBeNull();
          // Timers follow the state: ended or halted enrollments have none (U8, V3).
          if (s!.status !== 'active' || s!.wait === 'halted') expect(s!.dueAt).toBeNull();
          if (s!.status === 'active' && s!.wait === 'due') expect(s!.dueAt).not.toBeNull();
          // D5: never completed while a follow-up is queued and unconfirmed; waiting for delivery means one is.
          if (s!.status === 'completed') expect(s!.last?.delivery).not.toBe('queued');
          if (s!.status === 'active' && s!.wait === 'delivery') expect(s!.last?.delivery).toBe('queued');
          // The timer is an effect whenever it changes: the store is told, it derives nothing.
          const timerOf = (e: Enrollment) => (e.status === 'active' ? e.dueAt : null);
          const timerFx = effects.filter((f) => f.type === 'timer');
          if (next !== prev && timerOf(prev) !== timerOf(s!)) expect(timerFx).toEqual([{ type: 'timer', at: timerOf(s!) }]);
          for (const f of timerFx) if (f.type === 'timer') expect(f.at).toBe(timerOf(s!));
          // U8/D5: leaving while an action is queued cancels exactly that action (unless it was handed off: the store's guard).
          const cancels = effects.filter((f) => f.type === 'cancel');
          if ((prev.wait === 'delivery' && prev.last?.delivery === 'queued' && (s!.status !== 'active' || s!.wait === 'halted') && s!.last?.delivery === 'queued')) {
            expect(cancels).toEqual([{ type: 'cancel', key: prev.last.key }]);
          } else expect(cancels).toEqual([]);
        }
        // Keys are unique per run, and a run never repeats a node.
        const perRun = new Map<string, Set<string>>();
        for (const k of dispatched) {
          const [run, node] = k.split(':').slice(-2);
          const seen = perRun.get(run) ?? new Set<string>();
          expect(seen.has(node)).toBe(false);
          seen.add(node);
          perRun.set(run, seen);
        }
      }),
      { numRuns: 400 },
    );
  });

  it('U6 for random clocks: a timer that fires at or after the un-enroll date never dispatches', () => {
    fc.assert(
      fc.property(defArb, fc.integer({ min: 0, max: 10 * 86_400_000 }), (base, offset) => {
        const date = new Date(T0 + offset).toISOString();
        const def = { ...base, unenroll: { onDate: date } };
        let s = transition(null, { type: 'enroll', id: 'e', version: 1, by: 't' }, ctx(def, T0, false, false)).next!;
        for (let i = 0; i < 20 && s.status === 'active' && s.dueAt !== null; i++) {
          const now = s.dueAt;
          const { next, effects } = transition(s, { type: 'timer' }, ctx(def, now, false, false));
          if (now >= T0 + offset) expect(effects.some((f) => f.type === 'dispatch')).toBe(false);
          s = next!;
        }
      }),
      { numRuns: 300 },
    );
  });
});
