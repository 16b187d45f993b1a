// Engine settings a host falls back to when its configuration leaves them empty; one place for both
// hosts (the Runtime's own fallbacks should read these too: see the report to the lead).
export const HOST_DEFAULTS = {
  timezone: 'UTC',
  sender: 'cadenza@localhost',
} as const;
