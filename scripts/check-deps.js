// The dependency direction of DESIGN.md, checked: the pure core imports no I/O, the engine imports
// no host. Prints each violation and exits 1; used by `npm run lint` and by a test.
const { readdirSync, readFileSync, statSync } = require('node:fs');
const { join, relative } = require('node:path');

const root = join(__dirname, '..');
const rules = [
  { dir: 'engine/machine', banned: [/^node:/, /\/store\//, /\/runtime\//, /\/render\//, /^pg$/, /^fs$/, /^http$/], why: 'the machine is pure' },
  { dir: 'engine/criteria', banned: [/^node:/, /\/store\//, /\/runtime\//], why: 'criteria are pure' },
  { dir: 'engine/model', banned: [/^node:/, /\/store\//, /\/runtime\//], why: 'the model is pure' },
  { dir: 'engine/time', banned: [/^node:/, /\/store\//, /\/runtime\//], why: 'time is pure' },
  { dir: 'engine', banned: [/^n8n-/, /^@n8n\//, /^node-red/, /^@node-red\//, /\/nodes\//], why: 'the engine imports no host (a format it can read is not a host)' },
];

function files(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...files(p));
    else if (p.endsWith('.ts')) out.push(p);
  }
  return out;
}

function violations() {
  const found = [];
  for (const rule of rules) {
    for (const file of files(join(root, rule.dir))) {
      const src = readFileSync(file, 'utf8');
      for (const m of src.matchAll(/(?:import|export)[^'"]*?from\s+['"]([^'"]+)['"]|require\(\s*['"]([^'"]+)['"]\s*\)/g)) {
        const spec = m[1] ?? m[2];
        if (rule.banned.some((re) => re.test(spec))) found.push(`${relative(root, file)} imports "${spec}": ${rule.why}`);
      }
      if (rule.dir === 'engine/machine' && /Date\.now\(|new Date\(\)/.test(src)) found.push(`${relative(root, file)} reads the wall clock: the machine gets "now" as a value`);
    }
  }
  return found;
}

module.exports = { violations };
if (require.main === module) {
  const v = violations();
  for (const line of v) console.error(line);
  process.exit(v.length ? 1 : 0);
}
