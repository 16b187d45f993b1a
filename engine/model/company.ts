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

/** The company key of a record's data: `account:…` first, else `domain:…` for a company domain, else undefined. */
export function companyOf(data: Record<string, unknown>): string | undefined {
  for (const field of ['Account_Id', 'Account_Name', 'Company']) {
    const v = data[field];
    if ((typeof v === 'string' && v.trim()) || typeof v === 'number') return `account:${String(v).trim().toLowerCase()}`;
    if (v && typeof v === 'object' && 'id' in v) return `account:${String((v as { id: unknown }).id).toLowerCase()}`; // a CRM lookup field {id, name}
  }
  const domain = emailDomain(data.Email);
  return domain && !isFreeMailDomain(domain) ? `domain:${domain}` : undefined;
}
