// Every code block of README.md runs, as a user pasting it would: shell blocks in bash, in order, in
// a fresh copy of this clone (its sources and files as git has them, `npm ci`'s node_modules linked),
// with HOME a scratch folder (so `~/.node-red` and `~/.n8n` are the test's own); blocks a later
// command reads (a definition, a program) are saved under the file name the README gives.
//
// An HTML comment right before a block says how to run it (invisible on GitHub and npm):
//   <!-- readme-test: save example.mts -->      the block is that file; a later block runs it
//   <!-- readme-test: file flows/x.json -->      the block shows that file of the repository, as it is
//   <!-- readme-test: until /serving on/ -->    a server: the block passes once its output matches,
//                                              then it is stopped (ports 8080/1880/1881 become free ones)
//   <!-- readme-test: with npm-start -->        run while `npm start`'s Node-RED is up (its ports too)
//   <!-- readme-test: expect /L1 is now/ -->     its output must match (besides exiting 0)
//   <!-- readme-test: skip <why> -->            not run; the reason is printed and must be given
//   <!-- readme-test: rules S1 D4 -->           the SPEC rules the block shows (named in the test title)
// Blocks without a language (printed output) are text, not code.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { homedir, networkInterfaces, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port';

const root = resolve(__dirname, '../..');

export interface Block {
  line: number;
  lang: string;
  code: string;
  directives: Record<string, string>;
}

/** The fenced blocks of a Markdown text, each with the `readme-test` directives of the comment just before it. */
export function readmeBlocks(md: string): Block[] {
  const lines = md.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(\S*)\s*$/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    const directives: Record<string, string> = {};
    const prev = /^<!--\s*readme-test:(.*)-->\s*$/.exec(lines[start - 1] ?? '');
    for (const part of prev ? prev[1].split(';') : []) {
      const m = /^\s*(\S+)\s*(.*?)\s*$/.exec(part);
      if (m) directives[m[1]] = m[2];
    }
    blocks.push({ line: start + 1, lang: open[1], code: body.join('\n'), directives });
  }
  return blocks;
}

const blocks = readmeBlocks(readFileSync(join(root, 'README.md'), 'utf8')).filter((b) => b.lang && b.lang !== 'text');
let scratch: string;
let dir: string; // the clone
let home: string;
const ports = { editor: 0, mail: 0, smtp: 0, serve: 0 };
let started: ChildProcess | null = null;

/** Runs `script` in bash in the scratch folder; resolves with its output when it exits or when `until` matches. */
function run(script: string, until?: RegExp, ms = 120_000): Promise<{ code: number | null; out: string; matched: boolean }> {
  return new Promise((resolvePromise) => {
    const env = {
      ...process.env,
      HOME: home,
      PATH: `${join(root, 'node_modules/.bin')}:${process.env.PATH}`, // what \`npm run\` and npx give: the pinned Node 24
      PORT: String(ports.editor), MAIL_PORT: String(ports.mail), SMTP_PORT: String(ports.smtp),
      // The user's npm cache and settings (registry, proxy) although HOME moved: no re-download, same registry.
      npm_config_cache: process.env.npm_config_cache ?? join(homedir(), '.npm'),
      npm_config_userconfig: process.env.npm_config_userconfig ?? join(homedir(), '.npmrc'),
      CADENZA_USER_DIR: join(dir, '.cadenza-dev'), npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false',
    };
    const child = spawn('bash', ['-eo', 'pipefail', '-c', script], { cwd: dir, env, detached: true });
    let out = '';
    let matched = false;
    const stop = () => {
      try {
        process.kill(-child.pid!, 'SIGINT');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(stop, ms);
    const onData = (b: Buffer) => {
      out += b;
      if (until && !matched && until.test(out)) {
        matched = true;
        stop();
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, out, matched });
    });
  });
}

/** What a user types, with the documented ports moved to free ones so parallel runs never collide. */
function withPorts(code: string): string {
  return code
    .replace(/127\.0\.0\.1:1880/g, `127.0.0.1:${ports.editor}`)
    .replace(/127\.0\.0\.1:1881/g, `127.0.0.1:${ports.mail}`)
    .replace(/\b8080\b/g, String(ports.serve));
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'cadenza-readme-'));
  dir = join(scratch, 'cadenza');
  home = join(scratch, 'home');
  mkdirSync(home);
  // The clone: what git tracks (no dist, no .cadenza-dev, no databases), plus the built dist and
  // `npm ci`'s node_modules, linked — a build in the copy (npm pack) never touches this worktree.
  let tracked: string[] | undefined;
  try {
    tracked = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' }).split('\0').filter(Boolean);
  } catch {
    // not a git checkout (a downloaded source archive): everything but what builds and runs make
  }
  if (tracked) for (const f of tracked) cpSync(join(root, f), join(dir, f), { force: true });
  else cpSync(root, dir, { recursive: true, filter: (src) => !/\/(node_modules|dist|\.git|\.tmp|\.cadenza-dev)(\/|$)|\.(db|db-wal|db-shm|tgz)$/.test(src.slice(root.length)) });
  cpSync(join(root, 'dist'), join(dir, 'dist'), { recursive: true });
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'), 'dir');
  for (const k of Object.keys(ports) as (keyof typeof ports)[]) ports[k] = await freePort();
});

afterAll(async () => {
  // One that already exited (it failed to start) has nothing to stop, and would never emit 'exit' again.
  if (started && started.exitCode === null && started.signalCode === null) {
    const exited = new Promise((r) => started!.once('exit', r));
    started.kill('SIGINT');
    await exited;
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe('README.md', () => {
  it('D4 every code block says how it runs: a known language, and a reason when skipped', () => {
    expect(blocks.length).toBeGreaterThan(5);
    for (const b of blocks) {
      expect(['sh', 'json', 'ts'], `README.md:${b.line} language "${b.lang}"`).toContain(b.lang);
      if ('skip' in b.directives) expect(b.directives.skip.length, `README.md:${b.line} skip needs a reason`).toBeGreaterThan(10);
      if (b.lang !== 'sh' && !('skip' in b.directives)) expect(b.directives.save ?? b.directives.file, `README.md:${b.line}: a ${b.lang} block needs "save <file>" or "file <path>"`).toBeTruthy();
    }
  });

  for (const b of blocks) {
    const what = b.code.split('\n').find((l) => l.trim() && !l.startsWith('//'))?.slice(0, 60) ?? '';
    const title = `${b.directives.rules ?? 'S1'} README.md:${b.line} (${b.lang}) runs as pasted: ${what}`;
    if ('skip' in b.directives) {
      it.skip(`${title} — ${b.directives.skip}`, () => undefined);
      continue;
    }
    it(title, async () => {
      if (b.directives.file) {
        expect(JSON.parse(b.code), `README.md:${b.line} shows ${b.directives.file}`).toEqual(JSON.parse(readFileSync(join(root, b.directives.file), 'utf8')));
        return;
      }
      if (b.directives.save) {
        const file = b.directives.save.replace(/^~\//, home + '/');
        writeFileSync(resolve(dir, file), b.code + '\n');
        return;
      }
      if (b.directives.with === 'npm-start' && !started) {
        // `npm start` is `npm run build && node scripts/start.js`; the suite has built already.
        let out = '';
        const ready = await new Promise<boolean>((ok) => {
          started = spawn(process.execPath, [join(dir, 'scripts/start.js')], {
            env: { ...process.env, PORT: String(ports.editor), MAIL_PORT: String(ports.mail), SMTP_PORT: String(ports.smtp), CADENZA_USER_DIR: join(dir, '.cadenza-dev') },
          });
          started.stdout!.on('data', (d) => {
            out += d;
            if (/Cadenza is running/.test(out)) ok(true);
          });
          started.stderr!.on('data', (d) => (out += d));
          started.once('exit', () => ok(false));
        });
        expect(ready, `npm start came up:\n${out}`).toBe(true);
      }
      const until = b.directives.until ? new RegExp(b.directives.until.replace(/^\/|\/$/g, '')) : undefined;
      const r = await run(withPorts(b.code), until);
      if (until) expect(r.matched, `README.md:${b.line} never printed ${until}:\n${r.out}`).toBe(true);
      else expect(r.code, `README.md:${b.line} exited ${r.code}:\n${r.out}`).toBe(0);
      if (b.directives.expect) expect(r.out, `README.md:${b.line}`).toMatch(new RegExp(b.directives.expect.replace(/^\/|\/$/g, '')));
      expect(r.out, `README.md:${b.line}`).not.toMatch(/ERR_|Error: Cannot find|command not found|is not defined/);
    });
  }

  it('D4 npm start listens on 127.0.0.1 only and its mail sink answers in JSON', async () => {
    expect(started, 'a README block ran with npm start').toBeTruthy();
    expect((await fetch(`http://127.0.0.1:${ports.editor}/settings`)).ok).toBe(true);
    // From another address of this machine, nothing answers: the editor has no password.
    const other = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal);
    if (other) await expect(fetch(`http://${other.address}:${ports.editor}/settings`)).rejects.toThrow();
    const list = await (await fetch(`http://127.0.0.1:${ports.mail}/api/messages`)).json();
    expect(Array.isArray(list)).toBe(true);
  });
});
