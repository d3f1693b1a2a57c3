import * as vscode from 'vscode';
import { createCommands } from './commands';
import { PREVIEW_SCHEME, PreviewContent } from './preview';
import { resolveServer, Sidecar } from './sidecar';
import { watchSessionErrors } from './sessionErrors';
import { SessionState } from './state';
import { registerSummarizer, SummaryProgress } from './summarize';
import type { CommandContext } from './util';
import { SessionTreeProvider, type SessionNode } from './views/sessionTree';
import { createStatusBar } from './views/statusBar';

let sidecar: Sidecar | undefined;

export interface ExtensionApi {
  sidecar: Sidecar;
  state: SessionState;
}

export async function activate(context: vscode.ExtensionContext): Promise<ExtensionApi | undefined> {
  const output = vscode.window.createOutputChannel('OpenCode RPC');
  context.subscriptions.push(output);
  const folder = vscode.workspace.workspaceFolders?.[0];
  if (!folder || folder.uri.scheme !== 'file') {
    output.appendLine('[client] no local workspace folder: OpenCode commands need one');
    for (const id of commandIds(context)) {
      context.subscriptions.push(
        vscode.commands.registerCommand(id, () => vscode.window.showInformationMessage('OpenCode: open a folder first.')),
      );
    }
    return undefined;
  }

  const config = () => vscode.workspace.getConfiguration('opencodeRpc');
  // Resolved when the server (re)starts, not here: the commands are registered even when no server is found, and
  // each then says what is missing; fixing the setting works without a reload.
  const client = new Sidecar({
    server: () => resolveServer(config().get<string>('serverPath'), context.extensionPath),
    directory: folder.uri.fsPath,
    dataDir: config().get<string>('dataDir') || undefined,
    log: output,
    clientVersion: String(context.extension?.packageJSON?.version ?? '0.0.0'),
  });
  sidecar = client;

  client.onDied((e) => {
    const what = e.willRestart
      ? `The OpenCode RPC server stopped (exit code ${e.code ?? e.signal}); restarting it (${e.restart} of ${e.maxRestarts}).`
      : `The OpenCode RPC server stopped (exit code ${e.code ?? e.signal}) and was restarted ${e.maxRestarts} times already; it stays stopped. Reload the window to try again.`;
    void vscode.window.showInformationMessage(what, 'Show Log').then((a) => a && output.show());
  });

  // Before the first start: the handler is put on every connection the sidecar opens.
  const summaries = new SummaryProgress();
  context.subscriptions.push(registerSummarizer(client, summaries, output));

  const state = new SessionState(client, context.workspaceState);
  context.subscriptions.push(watchSessionErrors(client, state));
  const tree = new SessionTreeProvider(state);
  const view = vscode.window.createTreeView<SessionNode>('opencodeRpc.sessions', { treeDataProvider: tree, showCollapseAll: true });
  tree.onLoaded = (note) => (view.message = note);
  const previews = new PreviewContent();
  const ctx: CommandContext = {
    state,
    workspaceFolder: folder.uri,
    output,
    selection: () => (view.visible && view.selection[0]?.session.id) || undefined,
    summaries,
  };
  context.subscriptions.push(
    state,
    tree,
    view,
    createStatusBar(state),
    vscode.workspace.registerTextDocumentContentProvider(PREVIEW_SCHEME, previews),
    { dispose: () => void client.dispose() },
  );
  for (const [id, handler] of Object.entries(createCommands(ctx, { previews, tree }))) {
    context.subscriptions.push(vscode.commands.registerCommand(id, handler));
  }
  context.subscriptions.push(
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('opencodeRpc.serverPath') || e.affectsConfiguration('opencodeRpc.dataDir')) {
        void vscode.window.showInformationMessage('OpenCode: reload the window to use the new server settings.');
      }
    }),
  );

  // Start in the background: the palette must not wait for the server.
  client
    .start()
    .then(() => state.refresh())
    .catch((e: Error) => {
      output.appendLine(`[client] the server did not start: ${e.message}`);
      void vscode.window.showErrorMessage(`OpenCode: the RPC server did not start: ${e.message}`, 'Show Log').then((a) => a && output.show());
    });
  return { sidecar: client, state };
}

/** Sends shutdown and exit, and waits for the server process to leave. */
export async function deactivate(): Promise<void> {
  await sidecar?.dispose();
  sidecar = undefined;
}

function commandIds(context: vscode.ExtensionContext): string[] {
  const cmds = (context.extension?.packageJSON?.contributes?.commands ?? []) as { command: string }[];
  return cmds.map((c) => c.command);
}
