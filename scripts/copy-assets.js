// Copies what tsc does not: SQL migrations next to the compiled store.
const { cpSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');
const root = join(__dirname, '..');
const from = join(root, 'engine/store/sqlite/migrations');
const to = join(root, 'dist/engine/store/sqlite/migrations');
mkdirSync(to, { recursive: true });
cpSync(from, to, { recursive: true });
