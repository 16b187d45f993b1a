// C3: cadences per module by edition (created / active); add-ons raise both, active at most 70.
export type Edition = 'standard' | 'professional' | 'enterprise' | 'ultimate';

export const EDITIONS: Record<Edition, { created: number; active: number }> = {
  standard: { created: 20, active: 10 },
  professional: { created: 40, active: 20 },
  enterprise: { created: 60, active: 30 },
  ultimate: { created: 70, active: 50 },
};

export const MAX_ACTIVE_WITH_ADDONS = 70;

export interface LimitSettings {
  edition?: Edition;
  addOns?: number;
  /** Explicit overrides win over the edition preset. */
  created?: number;
  active?: number;
  /** C5: actions (emails, tasks, calls, messages) one cadence may perform; unlimited when absent. */
  actionsPerCadence?: number;
}

export function moduleLimits(s: LimitSettings = {}): { created: number; active: number } {
  const base = EDITIONS[s.edition ?? 'enterprise'];
  const addOns = Math.max(0, s.addOns ?? 0);
  return {
    created: s.created ?? base.created + addOns,
    active: s.active ?? Math.min(base.active + addOns, MAX_ACTIVE_WITH_ADDONS),
  };
}
