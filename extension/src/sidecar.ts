// The sidecar client: spawns `opencode-rpc serve`, speaks JSON-RPC with LSP framing over its stdio
// (vscode-jsonrpc), initializes it on the workspace folder, restarts it when it dies, and shuts it down cleanly.
// It knows nothing of the vscode module, so the same code runs in the extension host and in plain node tests.
import { ChildProcess, spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import {
  CancellationToken,
  createMessageConnection,
  MessageConnection,
  ParameterStructures,
  StreamMessageReader,
  StreamMessageWriter,
} from 'vscode-jsonrpc/node';
import { ExitNotification, InitializedNotification, InitializeRequest, requestTypes, ShutdownRequest } from './protocol.generated';
import type { InitializeResult, MethodName, ParamsOf, ResultOf } from './protocol';

export interface ServerCommand {
  command: string;
  args: string[];
  /** Where it came from, for the log: "setting", "bundled" or "repo build". */
  source: string;
}

/**
 * Which server to run, in order: the `opencodeRpc.serverPath` setting; the binary bundled in the extension
 * (`<extension>/server/opencode-rpc`); from the repository, its NativeAOT publish (`../artifacts/opencode-rpc/`), then
 * its builds (`../src/OpenCode.Rpc/bin/{Release,Debug}/net10.0/opencode-rpc.dll`), run with `dotnet`. A setting that names a `.dll` is run with `dotnet` too.
 */
export function resolveServer(setting: string | undefined, extensionPath: string, exists = fs.existsSync): ServerCommand {
  const viaDotnet = (p: string, source: string): ServerCommand =>
    p.endsWith('.dll') ? { command: 'dotnet', args: [p], source } : { command: p, args: [], source };
  if (setting && setting.trim()) return viaDotnet(setting.trim(), 'setting');
  const bundled = path.join(extensionPath, 'server', 'opencode-rpc');
  if (exists(bundled)) return { command: bundled, args: [], source: 'bundled' };
  // The repository's NativeAOT publish (scripts/publish.sh), then its dotnet builds.
  const published = path.resolve(extensionPath, '..', 'artifacts', 'opencode-rpc', 'opencode-rpc');
  if (exists(published)) return { command: published, args: [], source: 'repo publish' };
  for (const config of ['Release', 'Debug']) {
    const dll = path.resolve(extensionPath, '..', 'src', 'OpenCode.Rpc', 'bin', config, 'net10.0', 'opencode-rpc.dll');
    if (exists(dll)) return { command: 'dotnet', args: [dll], source: 'repo build' };
  }
  throw new Error(
    `opencode-rpc was not found: set "opencodeRpc.serverPath", bundle it as ${bundled}, or build the repository (dotnet build src/OpenCode.Rpc).`,
  );
}

export interface Log {
  append(text: string): void;
  appendLine(text: string): void;
}

export interface SidecarOptions {
  /** The server to run, or how to find it: resolved at each (re)start, so a fixed setting takes effect. */
  server: ServerCommand | (() => ServerCommand);
  /** The project directory sent as initialize's `directory`. */
  directory: string;
  /** Passed as `--data-dir` when set. */
  dataDir?: string;
  log: Log;
  env?: NodeJS.ProcessEnv;
  /** How many times a dead server is restarted before giving up. */
  maxRestarts?: number;
  clientVersion?: string;
}

/** Thrown when the connected server does not offer a method (initialize's capabilities.methods). */
export class UnsupportedMethodError extends Error {
  constructor(
    readonly method: string,
    readonly serverVersion: string,
  ) {
    super(`This server (opencode-rpc ${serverVersion}) does not offer ${method}.`);
  }
}

export interface DiedEvent {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** How many restarts have been made, this one included; 0 when the server will not be restarted. */
  restart: number;
  maxRestarts: number;
  willRestart: boolean;
}

/** Answers a request the server sends to the client (e.g. `compaction/summarize`). Throw a vscode-jsonrpc
 * `ResponseError` to answer with that error. */
export type ServerRequestHandler = (params: unknown, token: CancellationToken) => Promise<unknown>;

export class Sidecar {
  private proc: ChildProcess | undefined;
  private readonly requestHandlers = new Map<string, ServerRequestHandler>();
  private conn: MessageConnection | undefined;
  private ready: Promise<InitializeResult> | undefined;
  private init: InitializeResult | undefined;
  private restarts = 0;
  private disposed = false;
  private readonly events = new EventEmitter();

  constructor(private readonly opts: SidecarOptions) {}

  get initializeResult(): InitializeResult | undefined {
    return this.init;
  }

  get serverVersion(): string {
    return this.init?.serverInfo.version ?? 'unknown';
  }

  get restartCount(): number {
    return this.restarts;
  }

  /** Every notification from the server: `(method, params)`. */
  onNotification(handler: (method: string, params: unknown) => void): { dispose(): void } {
    this.events.on('notification', handler);
    return { dispose: () => this.events.off('notification', handler) };
  }

  /**
   * Answers the server's requests to the client for `method`, on this connection and every restarted one. Without a
   * handler vscode-jsonrpc answers MethodNotFound, which the server reports as "the client does not answer".
   */
  onRequest(method: string, handler: ServerRequestHandler): { dispose(): void } {
    this.requestHandlers.set(method, handler);
    const live = this.conn?.onRequest(method, (params: unknown, token: CancellationToken) => handler(params, token));
    return {
      dispose: () => {
        if (this.requestHandlers.get(method) === handler) this.requestHandlers.delete(method);
        live?.dispose();
      },
    };
  }

  /** After each (re)start: the initialize result. */
  onStarted(handler: (r: InitializeResult) => void): { dispose(): void } {
    this.events.on('started', handler);
    return { dispose: () => this.events.off('started', handler) };
  }

  onDied(handler: (e: DiedEvent) => void): { dispose(): void } {
    this.events.on('died', handler);
    return { dispose: () => this.events.off('died', handler) };
  }

  /** Starts the server if needed and resolves once it is initialized. */
  start(): Promise<InitializeResult> {
    if (this.disposed) return Promise.reject(new Error('The OpenCode RPC client has been stopped.'));
    // A start that failed (no server found, spawn error, initialize refused) is forgotten, so the next command
    // tries again instead of failing forever.
    this.ready ??= this.launch().catch((e: Error) => {
      this.ready = undefined;
      this.conn?.dispose();
      this.conn = undefined;
      const proc = this.proc;
      this.proc = undefined;
      if (proc && proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
      throw e;
    });
    return this.ready;
  }

  /** True when the running server offers the method. Call after {@link start}. */
  supports(method: string): boolean {
    return this.init?.capabilities.methods.includes(method) ?? false;
  }

  /** Throws {@link UnsupportedMethodError} unless the server offers every one of the methods. */
  async require(...methods: string[]): Promise<void> {
    await this.start();
    const missing = methods.find((m) => !this.supports(m));
    if (missing) throw new UnsupportedMethodError(missing, this.serverVersion);
  }

  async call<M extends MethodName>(method: M, params: ParamsOf<M>, token?: CancellationToken): Promise<ResultOf<M>> {
    await this.start();
    if (!this.supports(method)) throw new UnsupportedMethodError(method, this.serverVersion);
    return this.sendRaw(method, params, token) as Promise<ResultOf<M>>;
  }

  /** An untyped request without the capability check: for tests and tools that set up data. */
  async sendRaw(method: string, params: unknown, token?: CancellationToken): Promise<unknown> {
    await this.start();
    const conn = this.conn;
    if (!conn) return Promise.reject(new Error('The OpenCode RPC server is not running.'));
    // The generated RequestType when the protocol document has the method; by name otherwise.
    const type = (requestTypes as Record<string, unknown>)[method];
    // vscode-jsonrpc counts a trailing undefined as a parameter: pass the token only when there is one.
    const rest: unknown[] = token ? [params, token] : [params];
    if (type) return (conn.sendRequest as (...a: unknown[]) => Promise<unknown>)(type, ...rest);
    return (conn.sendRequest as (...a: unknown[]) => Promise<unknown>)(method, ParameterStructures.byName, ...rest);
  }

  private async launch(): Promise<InitializeResult> {
    const { directory, dataDir, log } = this.opts;
    const server = typeof this.opts.server === 'function' ? this.opts.server() : this.opts.server;
    const args = [...server.args, 'serve', ...(dataDir ? ['--data-dir', dataDir] : [])];
    log.appendLine(`[client] starting ${server.command} ${args.join(' ')} (${server.source}) for ${directory}`);
    const proc = spawn(server.command, args, {
      cwd: directory,
      env: this.opts.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.proc = proc;
    proc.stderr!.setEncoding('utf8');
    proc.stderr!.on('data', (chunk: string) => log.append(chunk));
    const spawnError = new Promise<never>((_, reject) => proc.once('error', reject));
    spawnError.catch(() => undefined);
    proc.once('exit', (code, signal) => this.onExit(proc, code, signal));
    proc.once('error', (e) => log.appendLine(`[client] could not start the server: ${e.message}`));

    const conn = createMessageConnection(new StreamMessageReader(proc.stdout!), new StreamMessageWriter(proc.stdin!));
    this.conn = conn;
    conn.onNotification((method: string, params: unknown) => {
      this.events.emit('notification', method, params);
    });
    conn.onError(([e]) => log.appendLine(`[client] connection error: ${e.message}`));
    // Registered before listen(), so a request the server sends right after initialize is not answered MethodNotFound.
    for (const [method, handler] of this.requestHandlers) {
      conn.onRequest(method, (params: unknown, token: CancellationToken) => handler(params, token));
    }
    conn.listen();

    const init = (await Promise.race([
      conn.sendRequest(InitializeRequest, {
        processId: process.pid,
        clientInfo: { name: 'opencode-rpc-vscode', version: this.opts.clientVersion ?? '0.0.0' },
        directory,
      }),
      spawnError,
    ])) as InitializeResult;
    await conn.sendNotification(InitializedNotification);
    this.init = init;
    log.appendLine(
      `[client] initialized: ${init.serverInfo.name} ${init.serverInfo.version}, ${init.capabilities.methods.length} methods, project ${init.capabilities.project?.id ?? '?'}`,
    );
    this.events.emit('started', init);
    return init;
  }

  private onExit(proc: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (proc !== this.proc) return;
    this.conn?.dispose();
    this.conn = undefined;
    this.proc = undefined;
    this.ready = undefined;
    if (this.disposed) return;
    const max = this.opts.maxRestarts ?? 3;
    const willRestart = this.restarts < max;
    if (willRestart) this.restarts++;
    this.opts.log.appendLine(
      `[client] the server exited (code ${code}, signal ${signal}); ${willRestart ? `restart ${this.restarts} of ${max}` : `not restarting after ${max} restarts`}`,
    );
    this.events.emit('died', { code, signal, restart: willRestart ? this.restarts : 0, maxRestarts: max, willRestart } satisfies DiedEvent);
    if (willRestart) {
      this.start().catch((e: Error) => this.opts.log.appendLine(`[client] restart failed: ${e.message}`));
    }
  }

  /**
   * LSP's orderly stop: `shutdown`, then `exit`, then wait for the process itself (not just the stream), so no
   * write of the server is cut off when the extension host goes away. Kills it if it does not leave in time.
   */
  async dispose(timeoutMs = 5000): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    const proc = this.proc;
    const conn = this.conn;
    if (!proc) return;
    const exited = new Promise<void>((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve();
      else proc.once('exit', () => resolve());
    });
    const timeout = <T>(p: Promise<T>, ms: number) =>
      Promise.race([p, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), ms).unref())]);
    try {
      if (conn) {
        await timeout<unknown>(this.ready ?? Promise.resolve(), timeoutMs).catch(() => undefined);
        await timeout(conn.sendRequest(ShutdownRequest), timeoutMs);
        await conn.sendNotification(ExitNotification);
      }
    } catch (e) {
      this.opts.log.appendLine(`[client] shutdown: ${(e as Error).message}`);
    }
    proc.stdin?.end();
    if ((await timeout(exited, timeoutMs)) === 'timeout') {
      this.opts.log.appendLine('[client] the server did not exit in time; killing it');
      proc.kill('SIGKILL');
      await exited;
    }
    conn?.dispose();
    this.conn = undefined;
    this.proc = undefined;
  }

  /** The server's process id (tests use it to kill the server). */
  get pid(): number | undefined {
    return this.proc?.pid;
  }
}
