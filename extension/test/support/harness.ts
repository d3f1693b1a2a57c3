// Test environment: a temp git project and data dir, the REAL opencode-rpc sidecar (the repository's Debug build,
// run with dotnet) driven by the extension's own Sidecar client, and the extension's command handlers wired to the
// vscode stub. Each test gets its own environment.
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCommands } from '../../src/commands';
import { PreviewContent } from '../../src/preview';
import type { SessionInfo } from '../../src/protocol';
import { resolveServer, Sidecar, type ServerCommand } from '../../src/sidecar';
import { watchSessionErrors } from '../../src/sessionErrors';
import { SessionState } from '../../src/state';
import { registerSummarizer, SummaryProgress } from '../../src/summarize';
import type { CommandContext } from '../../src/util';
import { SessionTreeProvider } from '../../src/views/sessionTree';
import { createStatusBar } from '../../src/views/statusBar';
import * as vscode from './vscode';

/** extension/ (the bundled tests live in extension/out/test). */
export const EXT_ROOT = path.resolve(__dirname, '..', '..');

/** The server under test: $OPENCODE_RPC_DLL, else the repository's Debug build (`npm test` builds it first), never
 * an older published binary that happens to be lying around. */
export function serverCommand(): ServerCommand {
  const dll = process.env.OPENCODE_RPC_DLL ?? path.resolve(EXT_ROOT, '..', 'src', 'OpenCode.Rpc', 'bin', 'Debug', 'net10.0', 'opencode-rpc.dll');
  if (!fs.existsSync(dll)) throw new Error(`${dll} does not exist: run \`dotnet build src/OpenCode.Rpc -c Debug\` (npm test does) or set OPENCODE_RPC_DLL`);
  return resolveServer(dll, EXT_ROOT);
}

export class MemoryMemento {
  private readonly m = new Map<string, unknown>();
  keys() {
    return [...this.m.keys()];
  }
  get<T>(key: string, dflt?: T): T | undefined {
    return (this.m.has(key) ? this.m.get(key) : dflt) as T | undefined;
  }
  async update(key: string, value: unknown) {
    if (value === undefined) this.m.delete(key);
    else this.m.set(key, value);
  }
}

export interface Env {
  root: string;
  project: string;
  dataDir: string;
  client: Sidecar;
  state: SessionState;
  ctx: CommandContext;
  tree: SessionTreeProvider;
  /** The read-only documents Undo's diff previews show. */
  previews: PreviewContent;
  commands: Record<string, (...args: any[]) => Promise<void>>;
  log: { text: string; append(s: string): void; appendLine(s: string): void };
  run(id: string, ...args: unknown[]): Promise<void>;
  /** A raw request, for setting up data the commands then act on. */
  rpc<T = any>(method: string, params?: unknown): Promise<T>;
  dispose(): Promise<void>;
}

export function git(cwd: string, ...args: string[]): string {
  return execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd, encoding: 'utf8' });
}

/** Same environment for every server the tests start: no global OpenCode config of the machine leaks in. */
export function serverEnv(root: string): NodeJS.ProcessEnv {
  return {
    ...process.env,
    HOME: path.join(root, 'home'),
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'xdg-data'),
    XDG_STATE_HOME: path.join(root, 'state'),
    OPENCODE_DISABLE_SHARE: '1',
  };
}

export interface EnvOptions {
  maxRestarts?: number;
  /** Written as the global opencode.json ($XDG_CONFIG_HOME/opencode), as OpenCode reads it (e.g. enterprise.url). */
  globalConfig?: object;
  /** Over serverEnv(): undefined removes a variable (e.g. OPENCODE_DISABLE_SHARE to let a test share). */
  env?: Record<string, string | undefined>;
}

export async function startEnv(opts: EnvOptions = {}): Promise<Env> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ocrpc-ext-'));
  const project = path.join(root, 'project');
  const dataDir = path.join(root, 'data');
  for (const d of [project, dataDir, path.join(root, 'home'), path.join(root, 'config')]) fs.mkdirSync(d, { recursive: true });
  if (opts.globalConfig) {
    fs.mkdirSync(path.join(root, 'config', 'opencode'), { recursive: true });
    fs.writeFileSync(path.join(root, 'config', 'opencode', 'opencode.json'), JSON.stringify(opts.globalConfig));
  }
  const env = serverEnv(root);
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  git(project, 'init', '-q', '-b', 'main');
  fs.writeFileSync(path.join(project, 'hello.txt'), 'hello\n');
  git(project, 'add', '-A');
  git(project, 'commit', '-q', '-m', 'init');

  vscode.ui.reset();
  vscode.workspace.workspaceFolders = [{ uri: vscode.Uri.file(project), name: 'project', index: 0 }];
  const log = {
    text: '',
    append(s: string) {
      this.text += s;
    },
    appendLine(s: string) {
      this.text += s + '\n';
    },
  };
  const client = new Sidecar({ server: serverCommand(), directory: project, dataDir, log, env, maxRestarts: opts.maxRestarts });
  // As activate() does: the compaction/summarize handler, before the first start.
  const summaries = new SummaryProgress();
  const summarizer = registerSummarizer(client, summaries, log);
  const state = new SessionState(client, new MemoryMemento() as never);
  const sessionErrors = watchSessionErrors(client, state);
  const tree = new SessionTreeProvider(state);
  const ctx: CommandContext = {
    state,
    workspaceFolder: vscode.Uri.file(project) as never,
    output: vscode.window.createOutputChannel('OpenCode RPC') as never,
    summaries,
  };
  const previews = new PreviewContent();
  const commands = createCommands(ctx, { previews, tree }) as Env['commands'];
  const status = createStatusBar(state);
  await client.start();
  return {
    root,
    project,
    dataDir,
    client,
    state,
    ctx,
    tree,
    previews,
    commands,
    log,
    run: (id, ...args) => {
      const c = commands[id];
      if (!c) throw new Error(`no command ${id}`);
      return c(...args);
    },
    rpc: <T>(method: string, params?: unknown) => client.sendRaw(method, params ?? {}) as Promise<T>,
    async dispose() {
      summarizer.dispose();
      sessionErrors.dispose();
      status.dispose();
      tree.dispose();
      state.dispose();
      await client.dispose();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * A real share server (`opencode-rpc share-server`, OpenCode's share API) on 127.0.0.1 with its own data dir, for
 * Share, Unshare and Import from a link; nothing leaves the machine. `url` is its base, for enterprise.url.
 */
export async function startShareServer(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ocrpc-share-'));
  const server = serverCommand();
  const proc = spawn(server.command, [...server.args, 'share-server', '--port', '0', '--data-dir', dir], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: serverEnv(dir),
  });
  let out = '';
  let err = '';
  proc.stdout!.setEncoding('utf8').on('data', (c: string) => (out += c));
  proc.stderr!.setEncoding('utf8').on('data', (c: string) => (err += c));
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    await exited;
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    await until('the share server to listen', () => /^listening on (\S+)/m.test(out) || proc.exitCode !== null, 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const url = /^listening on (\S+)/m.exec(out)?.[1];
  if (!url) {
    await stop();
    throw new Error(`the share server did not start: ${err || out}`);
  }
  return { url, stop };
}

// ---- OpenCode ids and an agent turn written over RPC ------------------------------------------------------------

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
let lastMs = 0;
let counter = 0;

/** OpenCode's ascending id (reference §3.1): prefix_ + 12 hex of (ms * 4096 + counter) + 14 base62. */
export function ascendingId(prefix: 'msg' | 'prt'): string {
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = Math.max(now, lastMs);
    counter = 0;
  }
  counter++;
  const value = BigInt(lastMs) * 4096n + BigInt(counter);
  const hex = (value & 0xffffffffffffn).toString(16).padStart(12, '0');
  const rnd = [...crypto.randomBytes(14)].map((b) => BASE62[b % 62]).join('');
  return `${prefix}_${hex}${rnd}`;
}

const tokens = () => ({ input: 10, output: 20, reasoning: 0, cache: { read: 0, write: 0 } });

/**
 * One agent turn, the way an agent writes through the sidecar: the user's prompt; an assistant message; when the
 * server records steps (step/start, step/finish: issue 3), a step around `change()`, so the turn's file changes
 * land in a patch part that undo can revert. Returns the ids.
 */
export async function agentTurn(env: Env, sessionID: string, prompt: string, change?: () => void) {
  const now = Date.now();
  const userID = ascendingId('msg');
  await env.rpc('message/update', {
    info: { id: userID, sessionID, role: 'user', time: { created: now }, agent: 'build', model: { providerID: 'test', modelID: 'test-model' } },
  });
  await env.rpc('part/update', { part: { id: ascendingId('prt'), sessionID, messageID: userID, type: 'text', text: prompt } });
  const assistantID = ascendingId('msg');
  await env.rpc('message/update', {
    info: {
      id: assistantID,
      sessionID,
      role: 'assistant',
      time: { created: now + 1 },
      parentID: userID,
      modelID: 'test-model',
      providerID: 'test',
      mode: 'build',
      agent: 'build',
      path: { cwd: env.project, root: env.project },
      cost: 0,
      tokens: tokens(),
    },
  });
  const steps = env.client.supports('step/start') && env.client.supports('step/finish');
  if (steps) await env.rpc('step/start', { sessionID, messageID: assistantID });
  change?.();
  await env.rpc('part/update', { part: { id: ascendingId('prt'), sessionID, messageID: assistantID, type: 'text', text: `done: ${prompt}` } });
  if (steps) await env.rpc('step/finish', { sessionID, messageID: assistantID, reason: 'stop' });
  return { userID, assistantID, steps };
}

export async function createSession(env: Env, title: string): Promise<SessionInfo> {
  return env.rpc<SessionInfo>('session/create', { title });
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
