// Copies what tsc does not: SQL migrations, Node-RED editor files and locales, and the example flows
// into examples/ (where Node-RED's Import > Examples looks).
const { cpSync, existsSync, mkdirSync, readdirSync, rmSync } = require('node:fs');
const { join } = require('node:path');

const root = join(__dirname, '..');
const copy = (from, to, filter) => {
  mkdirSync(to, { recursive: true });
  cpSync(join(root, from), to, { recursive: true, filter });
};

copy('engine/store/sqlite/migrations', join(root, 'dist/engine/store/sqlite/migrations'));
copy('nodes/node-red', join(root, 'dist/nodes/node-red'), (src) => !src.endsWith('.ts'));
const examples = join(root, 'examples');
if (existsSync(join(root, 'flows/node-red'))) {
  rmSync(examples, { recursive: true, force: true });
  copy('flows/node-red', examples, (src) => !/\.(md)$/.test(src));
}
void readdirSync;
