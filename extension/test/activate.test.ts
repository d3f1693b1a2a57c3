import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { activate, deactivate } from '../src/extension';
import { EXT_ROOT, git, MemoryMemento, serverCommand, until } from './support/harness';
import { commands, outputText, statusBarItems, testConfig, ui, Uri, workspace } from './support/vscode';

test('activate starts the server on the workspace folder, registers every command, restarts a dead server with "Show Log", and deactivate stops it', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ocrpc-ext-'));
  const project = path.join(root, 'project');
  fs.mkdirSync(project);
  git(project, 'init', '-q');
  ui.reset();
  workspace.workspaceFolders = [{ uri: Uri.file(project), name: 'project', index: 0 }];
  const server = serverCommand();
  testConfig['opencodeRpc.serverPath'] = server.args[0] ?? server.command;
  testConfig['opencodeRpc.dataDir'] = path.join(root, 'data');
  const pkg = JSON.parse(fs.readFileSync(path.join(EXT_ROOT, 'package.json'), 'utf8'));
  const context = {
    subscriptions: [] as { dispose(): unknown }[],
    extensionPath: EXT_ROOT,
    workspaceState: new MemoryMemento(),
    extension: { packageJSON: pkg },
  };
  const api = (await activate(context as never))!;
  try {
    await api.sidecar.start();
    assert.match(outputText('OpenCode RPC'), /\[client\] initialized: opencode-rpc/);
    // The server's own stderr goes to the same channel (its log line for initialize, written by the server process).
    await until('server stderr in the Output channel', () => /opencode-rpc: initialized: project /.test(outputText('OpenCode RPC')));
    assert.equal(fs.realpathSync(api.sidecar.initializeResult!.capabilities.project!.directory), fs.realpathSync(project));

    // The palette entries work: New Session through the registered command.
    ui.answer('inputBox', () => 'from the palette');
    await commands.executeCommand('opencodeRpc.newSession');
    assert.equal(api.state.current?.title, 'from the palette');
    await until('status bar', () => statusBarItems.some((i) => i.text.includes('from the palette')));

    // The server dies: an information message with "Show Log", and a working server again.
    const restarted = new Promise((r) => api.sidecar.onStarted(r));
    process.kill(api.sidecar.pid!, 'SIGKILL');
    await until('died message', () => ui.messages.some((m) => m.text.includes('stopped')));
    const msg = ui.messages.find((m) => m.text.includes('stopped'))!;
    assert.equal(msg.level, 'info');
    assert.deepEqual(msg.items, ['Show Log']);
    assert.match(msg.text, /restarting it \(1 of 3\)/);
    await restarted;
    assert.equal((await api.sidecar.call('session/list', {})).length, 1);
  } finally {
    const pid = api.sidecar.pid;
    await deactivate();
    if (pid) assert.throws(() => process.kill(pid, 0), 'deactivate waited for the server to exit');
    for (const d of context.subscriptions) d.dispose();
    delete testConfig['opencodeRpc.serverPath'];
    delete testConfig['opencodeRpc.dataDir'];
    fs.rmSync(root, { recursive: true, force: true });
  }
});
