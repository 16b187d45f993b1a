// Copies what tsc does not: SQL migrations, Node-RED editor files and locales, and the example flows
// into examples/ (where Node-RED's Import > Examples looks).
const { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const copy = (from, to, filter) => {
  mkdirSync(to, { recursive: true });
  cpSync(join(root, from), to, { recursive: true, filter });
};

// Migrations are replaced, not merged: a file removed from the source must not linger in dist.
for (const dialect of ['sqlite', 'postgres']) {
  rmSync(join(root, `dist/engine/store/${dialect}/migrations`), { recursive: true, force: true });
  copy(`engine/store/${dialect}/migrations`, join(root, `dist/engine/store/${dialect}/migrations`));
}
copy('nodes/node-red', join(root, 'dist/nodes/node-red'), (src) => !src.endsWith('.ts'));
// The one parameter schema (engine/model/formats/schema.ts), compiled: into the Node-RED editor, where
// the field defaults and checks are built from it (the same paramProblem function the engine runs), and
// out as the JSON Schema that ships with the package.
{
  const schema = require(join(root, 'dist/engine/model/formats/schema.js'));
  const html = join(root, 'dist/nodes/node-red/cadenza-config.html');
  const editor = `{ schema: ${JSON.stringify(schema.editorSchema())}, problem: ${schema.paramProblem.toString()} }`;
  writeFileSync(html, readFileSync(html, 'utf8').replace('/*@cadenza-params*/null', editor));
  const { cadenceJsonSchema } = require(join(root, 'dist/engine/model/formats/json-schema.js'));
  writeFileSync(join(root, 'schema/cadence.schema.json'), JSON.stringify(cadenceJsonSchema(), null, 2) + '\n');
}
// n8n: codex files beside each node, and the icons every node folder refers to.
for (const folder of readdirSync(join(root, 'nodes/n8n'))) {
  if (folder === 'shared') continue;
  const to = join(root, 'dist/nodes/n8n', folder);
  copy(join('nodes/n8n', folder), to, (src) => !src.endsWith('.ts'));
}
copy('credentials', join(root, 'dist/credentials'), (src) => !src.endsWith('.ts'));
const examples = join(root, 'examples');
if (existsSync(join(root, 'flows/node-red'))) {
  rmSync(examples, { recursive: true, force: true });
  copy('flows/node-red', examples, (src) => !/\.(md)$/.test(src));
}
