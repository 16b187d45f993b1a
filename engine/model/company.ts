// U11: which company a record belongs to, so a reply from one person can un-enroll the others. The
// account comes first (Account_Id, then Account_Name, then a lead's Company); else the email domain — unless it is a
// free-mail or ISP domain (gmail.com, comcast.net, t-online.de …), which never makes a company.
// The list is the `email-providers` package (derhuerst/email-providers, ISC, ~8,800 free-mail and ISP
// domains, no dependencies, no install script). Weighed: `free-email-domains` downloads its list from
// HubSpot in a postinstall script (fails offline, differs per install); `freemail` pulls in tldjs.
// A few providers it lacks are added below, with where they come from.
import providers from 'email-providers/all.json';

// Free-mail providers missing from the package (checked against its 2.26.0 list), from the providers' own sites.
const EXTRA = ['fastmail.com', 'fastmail.fm', 'tutanota.com', 'tutanota.de', 'tuta.io', 'tuta.com', 'pm.me', 'skiff.com', 'duck.com'];

let FREE: Set<string> | undefined;
const free = () => (FREE ??= new Set([...(providers as string[]), ...EXTRA].map((d) => d.toLowerCase())));

/** The domain of an address (`Ann <ann@Example.COM>` → `example.com`), or undefined. */
export function emailDomain(address: unknown): string | undefined {
  if (typeof address !== 'string') return undefined;
  const angle = /<([^<>]*)>/.exec(address);
  const at = (angle ? angle[1] : address).trim().toLowerCase();
  const i = at.lastIndexOf('@');
  if (i < 1) return undefined;
  const domain = at.slice(i + 1).replace(/\.$/, '');
  return /^[a-z0-9-]+(\.[a-z0-9-]+)+$/.test(domain) ? domain : undefined;
}

/** Whether a domain (or a domain under it: mail.comcast.net) is a free-mail or ISP domain. */
export function isFreeMailDomain(domain: string): boolean {
  const parts = domain.toLowerCase().split('.');
  for (let i = 0; i < parts.length - 1; i++) if (free().has(parts.slice(i).join('.'))) return true;
  return false;
}

// What a web form's Company field holds when there is none: never a company, or every stranger who typed
// it would be one (compared without case, spaces or punctuation).
const PLACEHOLDERS = new Set(['', 'na', 'nil', 'none', 'null', 'no', 'nocompany', 'notapplicable', 'unknown', 'other', 'self', 'selfemployed', 'private',
  'privat', 'individual', 'personal', 'freelance', 'freelancer', 'home', 'student', 'retired', 'test', 'x', 'xx', 'xxx']);
// Legal forms at the end of a name: "Acme", "ACME Inc." and "Acme, Ltd" are one company.
const LEGAL_FORM = /[\s,.]+(inc|incorporated|llc|llp|ltd|limited|gmbh|ag|corp|corporation|co|company|plc|sa|sas|sarl|bv|nv|srl|spa|oy|ab|as|pty|kg)\.?$/i;

/** A company name as a key: lower case, spaces collapsed, the legal form dropped; undefined for a placeholder. */
function nameKey(name: string): string | undefined {
  let n = name.trim().toLowerCase().replace(/\s+/g, ' ');
  for (let i = 0; i < 2 && LEGAL_FORM.test(n); i++) n = n.replace(LEGAL_FORM, '');
  n = n.replace(/[\s,.]+$/, '');
  return PLACEHOLDERS.has(n.replace(/[^\p{L}\p{N}]/gu, '')) ? undefined : n;
}

/** The company key of a record's data: `account:…` first, else `domain:…` for a company domain, else undefined. */
export function companyOf(data: Record<string, unknown>): string | undefined {
  for (const field of ['Account_Id', 'Account_Name', 'Company']) {
    const v = data[field];
    if (typeof v === 'number') return `account:${v}`;
    if (typeof v === 'string' && v.trim()) {
      if (field === 'Account_Id') return `account:${v.trim().toLowerCase()}`;
      const key = nameKey(v);
      if (key) return `account:${key}`;
    }
    if (v && typeof v === 'object' && 'id' in v) return `account:${String((v as { id: unknown }).id).toLowerCase()}`; // a CRM lookup field {id, name}
  }
  const domain = emailDomain(data.Email);
  return domain && !isFreeMailDomain(domain) ? `domain:${domain}` : undefined;
}
