// U11: a company is an account, else a company email domain; free-mail and ISP domains never are.
import { describe, expect, it } from 'vitest';
import { companyOf, emailDomain, isFreeMailDomain } from '../../engine/model/company';

describe('company of a record', () => {
  it('U11 free-mail and ISP domains never make a company: ann.smith@gmail.com and bob.jones@gmail.com are strangers', () => {
    for (const d of ['gmail.com', 'googlemail.com', 'outlook.com', 'hotmail.com', 'yahoo.co.jp', 'icloud.com', 'proton.me', 'gmx.de', 'web.de', 't-online.de', 'comcast.net', 'verizon.net', 'btinternet.com', 'orange.fr', 'qq.com', 'mail.ru', 'fastmail.com', 'mail.comcast.net']) {
      expect(isFreeMailDomain(d), d).toBe(true);
    }
    expect(companyOf({ Email: 'ann.smith@gmail.com' })).toBeUndefined();
    expect(companyOf({ Email: 'Bob <bob.jones@GMail.com>' })).toBeUndefined();
    expect(companyOf({ Email: 'ann@acme-widgets.com' })).toBe('domain:acme-widgets.com');
    expect(companyOf({ Email: 'BOB@Acme-Widgets.com.' })).toBe('domain:acme-widgets.com');
  });

  it('U11 the account comes first: Account_Id, then Account_Name, then a lead\'s Company; the domain only without one', () => {
    expect(companyOf({ Account_Id: 42, Account_Name: 'Acme', Email: 'a@acme.com' })).toBe('account:42');
    expect(companyOf({ Account_Name: ' Acme Corp ', Email: 'ann@gmail.com' })).toBe('account:acme');
    expect(companyOf({ Account_Name: { id: 'A-7', name: 'Acme' } })).toBe('account:a-7');
    expect(companyOf({ Company: 'Acme', Email: 'ann@gmail.com' })).toBe('account:acme');
    expect(companyOf({ Account_Name: '  ', Email: 'x@acme.com' })).toBe('domain:acme.com');
    expect(companyOf({})).toBeUndefined();
  });

  it('U11 a web form\'s placeholder Company ("N/A", "-", "none", "self-employed") makes no company: two gmail.com leads that typed it stay strangers; a legal form does not split one', () => {
    for (const c of ['N/A', 'n/a', '-', '--', 'none', 'None.', 'Self-employed', 'private', 'unknown', '   ', 'x'])
      expect(companyOf({ Company: c, Email: 'x1@gmail.com' }), c).toBeUndefined();
    expect(companyOf({ Company: 'N/A', Email: 'ann@acme.com' })).toBe('domain:acme.com');
    expect(new Set(['Acme', 'ACME Inc.', 'Acme, Ltd', 'acme  llc', 'Acme GmbH'].map((c) => companyOf({ Company: c })))).toEqual(new Set(['account:acme']));
    expect(companyOf({ Company: 'Co-op Ventures' })).toBe('account:co-op ventures');
    expect(companyOf({ Company: 'Inc.' })).toBe('account:inc'); // a name that is only a legal form is kept as written
  });

  it('U11 D4 malformed addresses make no company', () => {
    for (const e of ['nobody', '@acme.com', 'a@', 'a@acme', 'a@ac me.com', 42, null]) expect(emailDomain(e), String(e)).toBeUndefined();
  });
});
