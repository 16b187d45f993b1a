// n8n property descriptions. Parameter names are those of engine/model/formats/params.ts, which both
// hosts compile from: the same field means the same in n8n and in Node-RED.
import type { INodeProperties, INodePropertyOptions } from 'n8n-workflow';
import { CHANNELS, DELAY_MAX, DELAY_UNITS } from '../../../engine/model/formats/schema';
import { ALL_OUTCOMES } from '../../../engine/model/outcomes';

// Values and bounds from the one parameter schema (engine/model/formats/schema.ts); labels are n8n's.
const UNIT_LABELS: Record<string, string> = { minutes: 'Minutes', hours: 'Hours', days: 'Days', businessDays: 'Business Days' };
const unit = (name: string, def: string): INodeProperties => ({
  displayName: 'Unit', name, type: 'options', default: def,
  options: DELAY_UNITS.map((u) => ({ name: UNIT_LABELS[u], value: u })),
});
const delayBounds = { minValue: 0, maxValue: DELAY_MAX };
const CHANNEL_LABELS: Record<string, Omit<INodePropertyOptions, 'value'>> = {
  email: { name: 'Email' }, task: { name: 'Task' }, call: { name: 'Call', description: 'Creates a call activity for the assignee; never dials' }, whatsapp: { name: 'WhatsApp' },
};

export const OUTCOME_OPTIONS: INodePropertyOptions[] = ALL_OUTCOMES.map((o) => ({ name: o, value: o }));

export const triggerFields: INodeProperties[] = [
  {
    displayName: 'To change a live cadence, edit and publish this workflow. Switching the workflow off deactivates the cadence (V3): when it is switched on again, every enrollment it held stops; resume them with Cadenza Enroll.',
    name: 'lifecycleNotice', type: 'notice', default: '',
  },
  { displayName: 'Cadence Name', name: 'cadenceName', type: 'string', default: '', description: 'Shown in reports; the workflow name when empty' },
  { displayName: 'Module', name: 'module', type: 'string', default: 'Leads', required: true, description: 'The one module whose records this cadence follows up (Leads, Contacts, Deals, … or a custom one)' },
  {
    displayName: 'Enrollment', name: 'mode', type: 'options', default: 'manual',
    options: [
      { name: 'Manual (Enroll Node)', value: 'manual' },
      { name: 'Records Matching a View', value: 'view' },
    ],
  },
  { displayName: 'View (JSONata)', name: 'view', type: 'string', default: '', placeholder: 'Lead_Status = "Sales-Ready"', displayOptions: { show: { mode: ['view'] } }, description: 'Records that match enter; $now() and $daysSince(field) use the engine clock' },
  { displayName: 'Un-Enroll When It Leaves the View', name: 'leaveView', type: 'boolean', default: false, displayOptions: { show: { mode: ['view'] } } },
  { displayName: 'Time Zone', name: 'timezone', type: 'string', default: '', placeholder: 'Europe/London', description: 'IANA zone for delays and the send window; the engine default when empty' },
  {
    displayName: 'Send Window Days', name: 'windowDays', type: 'multiOptions', default: [],
    options: ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'].map((d, i) => ({ name: d, value: String(i + 1) })),
    description: 'Empty: every day',
  },
  { displayName: 'Send Window Start', name: 'windowStart', type: 'string', default: '', placeholder: '09:00' },
  { displayName: 'Send Window End', name: 'windowEnd', type: 'string', default: '', placeholder: '17:00' },
  { displayName: 'Holidays', name: 'holidays', type: 'string', default: '', placeholder: '2026-12-25, 2026-12-26' },
  { displayName: 'Enroll at Most per Hour', name: 'capPerHour', type: 'number', default: 0, description: '0: no limit. The rest wait their turn; none is lost.' },
  { displayName: 'Enroll at Most per Day', name: 'capPerDay', type: 'number', default: 0, description: '0: no limit' },
  { displayName: 'Emails per Sender per Day', name: 'senderDailyCap', type: 'number', default: 0, description: '0: no limit. Over it, emails wait for the next day.' },
  { displayName: 'Exit Criteria (JSONata)', name: 'exitCriteria', type: 'string', default: '', placeholder: 'Stage in ["Closed Won", "Closed Lost"]' },
  { displayName: 'Exit on Outcomes', name: 'exitOutcomes', type: 'multiOptions', default: [], options: OUTCOME_OPTIONS },
  { displayName: 'Un-Enroll On', name: 'unenrollDate', type: 'string', default: '', placeholder: '2026-12-31' },
  { displayName: 'A Reply From the Same Company Un-Enrolls Colleagues', name: 'companyReply', type: 'boolean', default: false },
  { displayName: 'Exempt From Contact Limits', name: 'fatigueExempt', type: 'boolean', default: false, description: 'Whether this cadence (e.g. transactional) ignores the engine-wide limits on messages per contact (F13)' },
];

export const followUpFields: INodeProperties[] = [
  {
    displayName: 'Channel', name: 'channel', type: 'options', default: 'email',
    options: CHANNELS.map((c) => ({ ...CHANNEL_LABELS[c], value: c })),
  },
  { displayName: 'Delay', name: 'delay', type: 'number', default: 0, typeOptions: delayBounds },
  unit('delayUnit', 'days'),
  {
    displayName: 'Counted From', name: 'relativeTo', type: 'options', default: 'enrollment',
    options: [
      { name: 'Enrollment', value: 'enrollment' },
      { name: 'Completion of the Previous Step', value: 'previous' },
      { name: 'The Outcome That Led Here', value: 'outcome', description: 'After an Outcome Branch: the delay counts from when the outcome was recorded (or its timeout fired), e.g. call 1 day after they opened' },
    ],
  },
  { displayName: 'Subject', name: 'subject', type: 'string', default: '', placeholder: 'Hi {{First_Name}}' },
  { displayName: 'Body', name: 'body', type: 'string', typeOptions: { rows: 6 }, default: '', placeholder: '<p>Hello {{First_Name}}</p>' },
  { displayName: 'WhatsApp Template', name: 'templateId', type: 'string', default: '', displayOptions: { show: { channel: ['whatsapp'] } }, description: 'The pre-approved WhatsApp template this step sends (C4)' },
  { displayName: 'Sender', name: 'sender', type: 'string', default: '', displayOptions: { show: { channel: ['email'] } } },
  { displayName: 'Assign To', name: 'assignee', type: 'string', default: 'owner', displayOptions: { show: { channel: ['task', 'call'] } }, description: '"owner" or a user ID' },
  { displayName: 'Due In', name: 'dueIn', type: 'number', default: 1, typeOptions: delayBounds, displayOptions: { show: { channel: ['task', 'call'] } } },
  { ...unit('dueInUnit', 'days'), displayOptions: { show: { channel: ['task', 'call'] } } },
];

export const branchFields: INodeProperties[] = [
  { displayName: 'Outcomes', name: 'outcomes', type: 'multiOptions', default: ['replied'], options: OUTCOME_OPTIONS, description: 'One output per outcome, in this order; the first outcome that matches decides' },
  { displayName: 'Timeout', name: 'timeout', type: 'number', default: 0, typeOptions: delayBounds, description: 'No matching outcome in this long takes the last output. 0: no timeout output.' },
  unit('timeoutUnit', 'businessDays'),
];

export const checkFields: INodeProperties[] = [
  { displayName: 'Exit Criteria (JSONata)', name: 'criteria', type: 'string', default: '', required: true, placeholder: 'Stage = "Closed Won"', description: 'A record that matches, here or later on this path, leaves the cadence' },
];
