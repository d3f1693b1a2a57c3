import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { resolveServer, Sidecar } from '../src/sidecar';
import { createSession, serverCommand, serverEnv, startEnv, until } from './support/harness';

describe('resolveServer', () => {
  const ext = '/x/extension';
  test('the setting wins, and a .dll setting runs with dotnet', () => {
    assert.deepEqual(resolveServer('/opt/opencode-rpc', ext, () => true), { command: '/opt/opencode-rpc', args: [], source: 'setting' });
    assert.deepEqual(resolveServer('/b/opencode-rpc.dll', ext, () => true), { command: 'dotnet', args: ['/b/opencode-rpc.dll'], source: 'setting' });
  });
  test('then the bundled binary, then the repository publish, then the Release build, then the Debug build', () => {
    const bundled = '/x/extension/server/opencode-rpc';
    const published = '/x/artifacts/opencode-rpc/opencode-rpc';
    const release = '/x/src/OpenCode.Rpc/bin/Release/net10.0/opencode-rpc.dll';
    const debug = '/x/src/OpenCode.Rpc/bin/Debug/net10.0/opencode-rpc.dll';
    assert.deepEqual(resolveServer('', ext, (p) => p === published || p === release), { command: published, args: [], source: 'repo publish' });
    assert.equal(resolveServer('', ext, (p) => p === bundled || p === release).command, bundled);
    assert.deepEqual(resolveServer(undefined, ext, (p) => p === release || p === debug).args, [release]);
    assert.deepEqual(resolveServer('  ', ext, (p) => p === debug).args, [debug]);
  });
  test('nothing found: an error that says what to do', () => {
    assert.throws(() => resolveServer(undefined, ext, () => false), /opencodeRpc\.serverPath/);
  });
});

describe('Sidecar against the real server', () => {
  test('initializes on the workspace folder and reports the served methods', async () => {
    const env = await startEnv();
    try {
      const init = env.client.initializeResult!;
      assert.equal(init.serverInfo.name, 'opencode-rpc');
      assert.ok(init.capabilities.methods.includes('session/create'));
      assert.equal(fs.realpathSync(init.capabilities.project!.worktree), fs.realpathSync(env.project));
      assert.ok(env.client.supports('session/list'));
      assert.ok(!env.client.supports('no/such-method'));
      assert.match(env.log.text, /initialized: opencode-rpc/);
    } finally {
      await env.dispose();
    }
  });

  test('notifications from the server reach the listeners', async () => {
    const env = await startEnv();
    try {
      const seen: string[] = [];
      env.client.onNotification((m) => seen.push(m));
      await createSession(env, 'watched');
      await until('session.created', () => seen.includes('session.created'));
    } finally {
      await env.dispose();
    }
  });

  test('dispose sends shutdown and exit and waits for the process to exit 0', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ocrpc-ext-'));
    const log = { text: '', append(s: string) { this.text += s; }, appendLine(s: string) { this.text += s + '\n'; } };
    const client = new Sidecar({ server: serverCommand(), directory: root, dataDir: path.join(root, 'data'), log, env: serverEnv(root) });
    await client.start();
    const pid = client.pid!;
    const proc = (client as unknown as { proc: import('node:child_process').ChildProcess }).proc;
    const exit = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
    await client.dispose();
    assert.equal(await exit, 0, 'LSP: exit after shutdown leaves with 0');
    assert.throws(() => process.kill(pid, 0), 'the process is gone when dispose resolves');
    assert.doesNotMatch(log.text, /killing it/);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a failed start (no server found) is reported and retried by the next call', async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ocrpc-ext-'));
    const log = { text: '', append(s: string) { this.text += s; }, appendLine(s: string) { this.text += s + '\n'; } };
    let found = false;
    const client = new Sidecar({
      server: () => (found ? serverCommand() : resolveServer(undefined, '/nonexistent/extension', () => false)),
      directory: root,
      dataDir: path.join(root, 'data'),
      log,
      env: serverEnv(root),
    });
    await assert.rejects(client.call('session/list', {}), /opencode-rpc was not found: set "opencodeRpc\.serverPath"/);
    found = true;
    assert.deepEqual(await client.call('session/list', {}), []);
    await client.dispose();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a server that dies is restarted at most maxRestarts times, with an event each time', async () => {
    const env = await startEnv({ maxRestarts: 2 });
    try {
      const died: { willRestart: boolean; restart: number }[] = [];
      env.client.onDied((e) => died.push(e));
      await createSession(env, 'before the crash');
      for (let i = 1; i <= 3; i++) {
        const started = new Promise((r) => env.client.onStarted(r));
        process.kill(env.client.pid!, 'SIGKILL');
        await until(`death ${i}`, () => died.length === i);
        if (i <= 2) {
          await started;
          // The restarted server serves the same store.
          const list = await env.client.call('session/list', {});
          assert.ok(list.some((s) => s.title === 'before the crash'));
        }
      }
      assert.deepEqual(died.map((d) => [d.willRestart, d.restart]), [[true, 1], [true, 2], [false, 0]]);
      assert.match(env.log.text, /not restarting after 2 restarts/);
    } finally {
      await env.dispose();
    }
  });
});
