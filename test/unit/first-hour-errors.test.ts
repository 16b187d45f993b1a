// Errors a new user meets in the first hour say what is wrong in their terms, once.
import { describe, expect, it } from 'vitest';
import { formatProblem } from '../../engine/model/errors';
import { validateDefinition } from '../../engine/model/validate';
import { plainText } from '../../engine/render/render';
import { openStore } from '../../engine/store/open';

const email = (id: string) => ({ id, type: 'followUp', channel: 'email', template: { subject: 'Hi', body: 'Hi' } });
const task = (id: string) => ({ id, type: 'followUp', channel: 'task', template: { body: 'Call' } });
const def = (nodes: object[], edges: object[]) => ({ id: 'c', name: 'c', module: 'Leads', enrollment: { mode: 'manual' }, nodes, edges });

describe('first-hour errors', () => {
  it('D4 a SQLite store that cannot be opened is named, with what usually causes it (SQLite says only "unable to open database file")', () => {
    expect(() => openStore('sqlite:/no/such/folder/cadenza.db', '/tmp')).toThrow(/^cannot open the SQLite store \/no\/such\/folder\/cadenza\.db: unable to open database file \(does its folder exist, and may this process write there\?\)$/);
  });

  it('C6 two branches handling "replied" after one email: one message naming the outcome and both nodes', () => {
    const problems = validateDefinition(def(
      [email('welcome'), { id: 'b1', type: 'outcomeBranch', outcomes: ['replied'] }, { id: 'b2', type: 'outcomeBranch', outcomes: ['opened', 'replied'] }, task('t1'), task('t2')],
      [{ from: 'trigger', to: 'welcome' }, { from: 'welcome', to: 'b1' }, { from: 'welcome', to: 'b2' }, { from: 'b1', port: 'replied', to: 't1' }, { from: 'b2', port: 'replied', to: 't2' }],
    ));
    expect(problems.map(formatProblem)).toEqual(['C6 node "welcome" edges[2]: the outcome replied is handled twice: nodes "b1" and "b2" (one branch per outcome: merge them into one outcome branch)']);
  });

  it('C6 two wires from one port name both targets, and nothing downstream is reported as unreachable', () => {
    const problems = validateDefinition(def(
      [email('welcome'), email('a'), email('b')],
      [{ from: 'trigger', to: 'welcome' }, { from: 'welcome', to: 'a' }, { from: 'welcome', to: 'b' }],
    ));
    expect(problems.map(formatProblem)).toEqual(['C6 node "welcome" edges[2]: port "out" leads to both "a" and "b": one path per port']);
  });
});

describe('plain-text part of emails', () => {
  it('F6 paragraphs and line breaks of the HTML template stay apart in the text part', () => {
    expect(plainText('<p>Hi Ada,</p><p>Thanks for <b>coming</b>.<br>See you &amp; yours</p><ul><li>one</li><li>two</li></ul>')).toBe('Hi Ada,\n\nThanks for coming.\nSee you & yours\n\n- one\n- two');
  });
});
