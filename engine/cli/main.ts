// `cadenza validate <definition.json>` and `cadenza simulate <definition.json> [--records f]
// [--timeline f] [--until 30d] [--start iso] [--json]`. Exit codes: 0 ok, 1 invalid
// input, 2 usage.
import { readFileSync } from 'node:fs';
import { CadenzaError, formatProblem } from '../model/errors';
import { validateDefinition } from '../model/validate';
import type { CadenceDefinition } from '../model/types';
import { compileNodeRedFlow, isNodeRedFlow } from '../model/formats/node-red';
import { compileN8nWorkflow, isN8nWorkflow } from '../model/formats/n8n';
import { formatSimulation, simulate, type SimulationInput } from '../simulate/simulate';
import { serve } from '../http/server';
import { Runtime } from '../runtime/runtime';
import { httpPerformer } from '../runtime/http-performer';
import { openStore } from '../store/open';
import { approvedTemplates, serveConfig, type ServeConfig } from './config';
import { hostOptions, nodeRedEngineSettings } from '../host/settings';

const USAGE = `Usage:
  cadenza serve [--config cadenza.json] [--port 8080] [--host 127.0.0.1] [--store sqlite:cadenza.db]
                [--dispatch-url URL] [--secret S] [--base-url URL] [--timezone Zone] [--sender addr]
                [--edition standard|professional|enterprise|ultimate] [--add-ons N]
                [--max-created N] [--max-active N] [--max-actions N]
                [--whatsapp-templates id1,id2] [--retry-for 3d] [--retry-base 30s] [--retry-max 6h]
  cadenza keys create --name <name> --scopes view,manage,enroll,unenroll [--store sqlite:cadenza.db]
  cadenza keys list | keys revoke <id> [--store sqlite:cadenza.db]
  cadenza retry <cadence id> <record id> [--store sqlite:cadenza.db]
                   (D6: runs a failed enrollment's failed step again, under the same idempotency key)
  cadenza validate <definition.json> [--whatsapp-templates id1,id2 | --config cadenza.json]
  cadenza simulate <definition.json> [--records <file>] [--timeline <file>]
                   [--until 30d] [--start <ISO date>] [--cadence <id or name>] [--json]
                   [--config cadenza.json]  (contact limits, users and approved templates of serve)
                   (--outcomes <file> and --changes <file>, the older forms, still work)

A timeline is a list of {"at": ISO | "after": "3h", "from": "start" | "enrollment" | <follow-up id>,
"do": arrive | change | converted | unsubscribed | outcome | reply | enroll | unenroll | reenroll | retry |
publish | deactivate | activate, "record": …} (see the README).
A definition file may carry a "sample" block ({records, timeline, start, until}); then
"cadenza simulate <file>" needs no other argument. An exported Node-RED flow or n8n workflow
works too: it is compiled as a deploy/activation would compile it, so it can be dry-run first, under
the settings of its Node-RED engine node (contact limits, users, approved WhatsApp templates).`;

interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const stdio: Io = { out: (s) => process.stdout.write(s + '\n'), err: (s) => process.stderr.write(s + '\n') };

function readJson(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new CadenzaError('unreadable', 'D4', `cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new CadenzaError('invalid_json', 'D4', `${path} is not valid JSON: ${(e as Error).message}`);
  }
}

function parseArgs(args: string[]): { positional: string[]; flags: Record<string, string | true> } {
  const positional: string[] = [];
  const flags: Record<string, string | true> = {};
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) positional.push(a);
    else if (a === '--json' || a === '--help') flags[a.slice(2)] = true;
    else {
      const v = args[i + 1];
      if (v === undefined || v.startsWith('--')) throw new CadenzaError('usage', 'S1', `${a} needs a value`);
      flags[a.slice(2)] = v;
      i++;
    }
  }
  return { positional, flags };
}

/**
 * Reads a definition file: a canonical definition (with an optional sample block), or an exported
 * Node-RED flow or n8n workflow, compiled the way the host compiles it (pick with --cadence among several).
 */
function loadDefinition(path: string, cadence?: string): { definition: CadenceDefinition; sample: Partial<SimulationInput> } {
  const raw = readJson(path);
  if (isNodeRedFlow(raw) || isN8nWorkflow(raw)) {
    const all = isN8nWorkflow(raw) ? compileN8nWorkflow(raw) : compileNodeRedFlow(raw);
    const pick = cadence ? all.filter((d) => d.id === cadence || d.name === cadence) : all;
    if (pick.length !== 1) {
      const names = all.map((d) => `"${d.name}" (${d.id})`).join(', ');
      throw new CadenzaError('usage', 'S1', pick.length ? `${path} has ${all.length} cadences: ${names}; choose one with --cadence` : `no cadence "${cadence}" in ${path}: ${names}`);
    }
    // A Node-RED export carries its engine node: the run is under its settings, as the deployed flow is.
    const trigger = isNodeRedFlow(raw) ? raw.find((n) => n.id === pick[0].id) : undefined;
    const engineNode = isNodeRedFlow(raw) ? raw.find((n) => n.id === trigger?.engine && n.type === 'cadenza-config') : undefined;
    const engine = engineNode ? hostOptions(nodeRedEngineSettings(engineNode)) : undefined;
    return { definition: pick[0], sample: engine ? { engine: { fatigue: engine.fatigue, users: engine.users, whatsappTemplates: engine.whatsappTemplates } } : {} };
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { definition: raw as CadenceDefinition, sample: {} };
  const { sample, ...definition } = raw as CadenceDefinition & { sample?: Partial<SimulationInput> };
  return { definition: definition as CadenceDefinition, sample: sample ?? {} };
}

const engineOf = (c: ServeConfig): SimulationInput['engine'] => ({ fatigue: c.fatigue, users: c.users, whatsappTemplates: c.whatsappTemplates });

export async function main(argv: string[], io: Io = stdio): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    io.err((e as Error).message);
    return 2;
  }
  const [command, file] = parsed.positional;
  const { flags } = parsed;
  if (command === 'serve') return serveCommand(flags, io);
  if (command === 'keys') return keysCommand(parsed.positional[1], flags, io, parsed.positional[2]);
  if (command === 'retry') return retryCommand(parsed.positional[1], parsed.positional[2], flags, io);
  if (!command || flags.help || !['validate', 'simulate'].includes(command) || !file) {
    io.err(USAGE);
    return flags.help ? 0 : 2;
  }
  try {
    const { definition, sample } = loadDefinition(file, typeof flags.cadence === 'string' ? flags.cadence : undefined);
    const whatsappTemplates = approvedTemplates(flags);
    const problems = validateDefinition(definition, { whatsappTemplates });
    // C4: without the approved list, a WhatsApp template id cannot be checked: say so, don't call it valid.
    const unknownApproval = whatsappTemplates ? [] : (definition.nodes ?? []).filter((x) => x.type === 'followUp' && x.channel === 'whatsapp');
    if (command === 'validate' && !flags.json) {
      for (const x of unknownApproval) io.err(`note: C4 node "${x.id}" templateId: approval of WhatsApp template "${(x as { templateId?: string }).templateId}" is unknown; pass --whatsapp-templates or --config with "whatsappTemplates" to check it`);
    }
    if (command === 'validate' || problems.length) {
      if (flags.json) io.out(JSON.stringify({ valid: problems.length === 0, problems, approvalUnknown: unknownApproval.map((x) => x.id) }, null, 2));
      else if (problems.length) {
        io.err(`${file}: ${problems.length} problem${problems.length > 1 ? 's' : ''}`);
        for (const p of problems) io.err('  ' + formatProblem(p));
      } else io.out(`${file}: valid (${definition.nodes.length} nodes, module ${definition.module})`);
      return problems.length ? 1 : 0;
    }
    const input: SimulationInput = {
      definition,
      records: (typeof flags.records === 'string' ? readJson(flags.records) : sample.records) as SimulationInput['records'],
      outcomes: (typeof flags.outcomes === 'string' ? readJson(flags.outcomes) : sample.outcomes) as SimulationInput['outcomes'],
      changes: (typeof flags.changes === 'string' ? readJson(flags.changes) : sample.changes) as SimulationInput['changes'],
      timeline: (typeof flags.timeline === 'string' ? readJson(flags.timeline) : sample.timeline) as SimulationInput['timeline'],
      start: typeof flags.start === 'string' ? flags.start : sample.start,
      until: typeof flags.until === 'string' ? flags.until : sample.until,
      templates: sample.templates,
      // --config: the engine settings `cadenza serve` runs under (contact limits, users, approved templates).
      engine: typeof flags.config === 'string' ? engineOf(serveConfig({ config: flags.config })) : sample.engine,
    };
    if (!input.records) throw new CadenzaError('usage', 'S1', `no records: pass --records <file> or add "sample.records" to ${file}`);
    const result = await simulate(input);
    io.out(flags.json ? JSON.stringify(result, null, 2) : formatSimulation(result));
    return 0;
  } catch (e) {
    io.err(e instanceof Error ? e.message : String(e));
    return 1;
  }
}

/** `--store sqlite:<file>` (default `cadenza.db`) or `postgres://…`. */
function storeFrom(spec: string | true | undefined) {
  return openStore(typeof spec === 'string' ? spec : undefined, process.cwd());
}

async function serveCommand(flags: Record<string, string | true>, io: Io): Promise<number> {
  if (flags.help) {
    io.out(USAGE);
    return 0;
  }
  try {
    const c = serveConfig(flags);
    const host = c.host ?? '127.0.0.1';
    const baseUrl = c.baseUrl ?? `http://${host}:${c.port}`;
    const rt = await new Runtime({
      store: openStore(c.store, process.cwd()), secret: c.secret ?? process.env.CADENZA_SECRET, baseUrl, timezone: c.timezone,
      defaultSender: c.defaultSender, limits: c.limits, whatsappTemplates: c.whatsappTemplates, retry: c.retry, fatigue: c.fatigue, users: c.users,
    }).init();
    // What goes wrong while serving (a step that cannot run, a store that failed) is said, not swallowed.
    rt.subscribe((e) => {
      if (e.type === 'error') io.err(`error: ${e.error}`);
      else if (e.type === 'dispatchFailed') io.err(`hand-off of ${e.key} failed: ${e.error}`);
    });
    const target = c.dispatchUrl;
    if (target) {
      rt.onDispatch(httpPerformer(target));
    } else io.err('No --dispatch-url: due actions stay in the outbox and are retried until one is configured.');
    if (!c.whatsappTemplates) io.err('No approved WhatsApp templates (--whatsapp-templates or "whatsappTemplates" in --config): any template id is accepted (C4).');
    const server = await serve(rt, c.port!, host);
    const addr = server.address();
    io.out(`Cadenza is serving on http://${host}:${typeof addr === 'object' && addr ? addr.port : c.port}/  (API /api/v1, report /cadenza/)`);
    // The first SIGINT/SIGTERM stops gracefully: no new requests, hand-offs in flight get their grace
    // (stopGraceMs), then the store closes — on PostgreSQL its pool and LISTEN connection, which would
    // otherwise keep the process alive. A second signal exits at once.
    await new Promise<void>((resolve) => {
      const stop = () => {
        io.err('Stopping: finishing hand-offs in flight (a second signal exits at once)…');
        for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
        server.close(() => resolve());
        server.closeIdleConnections();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await rt.stop();
    await rt.store.close();
    return 0;
  } catch (e) {
    io.err(e instanceof Error ? e.message : String(e));
    return 1;
  }
}

async function keysCommand(sub: string | undefined, flags: Record<string, string | true>, io: Io, id?: string): Promise<number> {
  const create = sub === 'create' && typeof flags.name === 'string' && typeof flags.scopes === 'string';
  if (!create && sub !== 'list' && !(sub === 'revoke' && id)) {
    io.err(USAGE);
    return 2;
  }
  return withRuntime(flags, io, async (rt) => {
    if (sub === 'list') {
      // P1: who has access; the keys themselves were shown once and are not stored.
      for (const k of await rt.listApiKeys('cli')) io.out(`${k.id}  ${k.name}  ${k.scopes.join(',')}  created ${new Date(k.createdAt).toISOString()}${k.revokedAt ? `  revoked ${new Date(k.revokedAt).toISOString()}` : ''}`);
      return 0;
    }
    if (sub === 'revoke') {
      await rt.revokeApiKey(id!, 'cli');
      io.out(`${id}: revoked; it stops working at once`);
      return 0;
    }
    const k = await rt.createApiKey(flags.name as string, (flags.scopes as string).split(',').map((x) => x.trim()), 'cli');
    io.out(`${k.key}\n(scopes: ${k.scopes.join(', ')}; shown once, only its hash is stored)`);
    return 0;
  });
}

/** Opens the store a command names, runs it on an initialised runtime, and closes the store: an error exits 1. */
async function withRuntime(flags: Record<string, string | true>, io: Io, run: (rt: Runtime) => Promise<number>): Promise<number> {
  const store = storeFrom(flags.store);
  try {
    return await run(await new Runtime({ store }).init());
  } catch (e) {
    io.err(e instanceof Error ? e.message : String(e));
    return 1;
  } finally {
    await store.close();
  }
}

async function retryCommand(cadenceId: string | undefined, recordId: string | undefined, flags: Record<string, string | true>, io: Io): Promise<number> {
  if (!cadenceId || !recordId) {
    io.err(USAGE);
    return 2;
  }
  return withRuntime(flags, io, async (rt) => {
    const a = await rt.retry(cadenceId, recordId, 'cli');
    if (a.status !== 'enrolled') {
      io.err(`${a.rule}: ${a.reason}`);
      return 1;
    }
    io.out(`${recordId}: its failed step is queued again under the same key; a running scheduler hands it off`);
    return 0;
  });
}
