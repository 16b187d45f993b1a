// Safe content (issue 14): a record fills values, never HTML, links or headers.
import { describe, expect, it } from 'vitest';
import type { ActionRef, RecordSnapshot } from '../../engine/machine/types';
import type { FollowUpNode } from '../../engine/model/types';
import { templateProblems } from '../../engine/render/html';
import { render, tokenKind, verifyToken, type ActivityPayload, type EmailPayload } from '../../engine/render/render';

const SECRET = 'test-secret';
const action: ActionRef = { key: 'en1:1:e1', enrollmentId: 'en1', cadenceId: 'c1', version: 1, recordId: 'L1', nodeId: 'e1', channel: 'email' } as ActionRef;
const opts = { templates: {}, defaultSender: 'Sales <sales@acme.test>', secret: SECRET, baseUrl: 'https://cz.acme.test', users: { u1: { name: 'Uma', email: 'uma@acme.test', signature: '<b>Uma</b> · Acme' } } };
const rec = (data: Record<string, unknown>): RecordSnapshot => ({ id: 'L1', module: 'Leads', data: { Email: 'ann@example.com', Owner: 'u1', ...data }, unsubscribed: false });
const email = (body: string, data: Record<string, unknown>, subject = 'Hi'): EmailPayload =>
  render(action, { id: 'e1', type: 'followUp', channel: 'email', template: { subject, body } } as FollowUpNode, rec(data), opts, 0) as EmailPayload;

/** Every click-tracking target signed into an email. */
const clickTargets = (html: string) => [...html.matchAll(/\/t\/click\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => verifyToken(m[1], SECRET)!.u);

describe('safe content', () => {
  it('F6 a merge field never chooses where a tracked link goes: href="{{Website}}" is not a link, and no record URL is signed', () => {
    const e = email('<p><a href="{{Website}}">our site</a> <a href="https://{{Domain}}/x">x</a> <a href="https://acme.test/pricing?a=1&amp;b=2">pricing</a></p>', { Website: 'https://evil.example/phish', Domain: 'evil.example' });
    expect(clickTargets(e.html)).toEqual(['https://acme.test/pricing?a=1&b=2']);
    expect(e.html).not.toContain('evil.example');
    expect(e.html).toContain('<a>our site</a>');
  });

  it('F6 a merge field may fill a link\'s path or query, URL-encoded, and that link is tracked', () => {
    const e = email('<a href="https://acme.test/r/{{Code}}?ref={{Website}}">go</a>', { Code: 'a/b?c', Website: 'https://evil.example/phish' });
    expect(clickTargets(e.html)).toEqual(['https://acme.test/r/a%2Fb%3Fc?ref=https%3A%2F%2Fevil.example%2Fphish']);
  });

  it('F6 record fields are always escaped: {{{Note}}} inserts no HTML from the record, and its links are not signed', () => {
    const e = email('<p>{{{Note}}}</p><p>{{Name}}</p><p title="{{Name}}">t</p><img src="{{Photo}}"><p {{Attr}}>a</p>', {
      Note: '<a href="https://evil.example">click</a><script>x()</script>', Name: '"><img src=x onerror=alert(1)>', Photo: 'https://evil.example/t.gif', Attr: 'onclick=alert(1)',
    });
    expect(clickTargets(e.html)).toEqual([]);
    // No markup from the record: every '<' it sent is escaped, the img lost its record URL, the tag its attribute.
    expect(e.html).not.toMatch(/<a href="https:\/\/evil|<script|<img src=x|onclick|evil\.example\/t\.gif/);
    expect(e.html).toContain('<img><p>a</p>');
    expect(e.html).toContain('&lt;a href=&quot;https://evil.example&quot;&gt;click&lt;/a&gt;');
    expect(e.html).toContain('title="&quot;&gt;&lt;img src=x onerror=alert(1)&gt;"');
  });

  it('F6 Owner comes from the user directory only: a record\'s own Owner object cannot forge the signature', () => {
    const tpl = '<p>Hi</p>{{{Owner.signature}}} {{Owner.name}}';
    expect(email(tpl, {}).html).toContain('<b>Uma</b> · Acme Uma');
    const forged = email(tpl, { Owner: { id: 'u1', signature: '<a href="https://evil.example">CEO</a>', name: 'Boss' } });
    expect(forged.html).not.toMatch(/evil|Boss|<b>Uma/);
    const unknown = email(tpl, { Owner: 'nobody' });
    expect(unknown.html).not.toMatch(/undefined|<b>/);
  });

  it('F6 header-bound values lose CR, LF and control characters (subject, recipient, task subject)', () => {
    const e = email('x', { First_Name: 'Ann\r\nBcc: victim@example.com', Email: 'ann@example.com\r\nBcc: v@example.com' }, 'Hi {{First_Name}}\u0000\u2028!');
    expect(e.subject).toBe('Hi Ann Bcc: victim@example.com !');
    expect(e.to).toBe('ann@example.com Bcc: v@example.com');
    for (const v of [e.subject, e.to, e.from]) expect(v).not.toMatch(/[\r\n\u0000-\u001f\u2028]/);
    const t = render({ ...action, channel: 'task' }, { id: 't', type: 'followUp', channel: 'task', template: { subject: 'Call {{First_Name}}', body: '' } } as FollowUpNode, rec({ First_Name: 'A\nB' }), opts, 0) as ActivityPayload;
    expect(t.subject).toBe('Call A B');
  });

  it('F6 D4 each tracking token carries its kind, so it works on its own route only', () => {
    const e = email('<a href="https://acme.test/">x</a>', {});
    const open = verifyToken(/\/t\/open\/([^.]+\.[^."]+)\.gif/.exec(e.html)![1], SECRET)!;
    const click = verifyToken(/\/t\/click\/([^"]+)"/.exec(e.html)![1], SECRET)!;
    const unsub = verifyToken(e.unsubscribeUrl.split('/').at(-1)!, SECRET)!;
    expect([tokenKind(open), tokenKind(click), tokenKind(unsub)]).toEqual(['open', 'click', 'unsubscribe']);
    // Tokens signed before kinds were: told apart by their claims.
    expect([tokenKind({ k: 'a' }), tokenKind({ k: 'a', u: 'https://x' }), tokenKind({ k: 'a', r: 'L1', m: 'Leads' })]).toEqual(['open', 'click', 'unsubscribe']);
  });

  it('F6 D4 rendering is linear: tags with 100,000 spaces or attributes render at once (a backtracking parse took 7 s for 50,000)', () => {
    const n = 100_000;
    const t = performance.now();
    for (const tpl of ['<a' + ' '.repeat(n) + '>', '<a' + ' x'.repeat(n) + '>', '<a x=' + ' '.repeat(n) + '>', '{{' + ' '.repeat(n), '<' + 'a'.repeat(n)]) {
      email(tpl, {});
      templateProblems(tpl + '{{X}}>');
    }
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('D4 C6 templateProblems names each merge field a template would lose', () => {
    expect(templateProblems('<a href="https://acme.test/?q={{X}}">ok</a><p title="{{Y}}">{{Z}}</p>')).toEqual([]);
    const p = templateProblems('<a href="{{Website}}">a</a><a href="https://{{D}}/">b</a><img src="{{P}}"><p {{A}}>c</p><td width={{W}}>');
    expect(p).toHaveLength(5);
    expect(p[0]).toMatch(/never its scheme or host/);
  });
});
