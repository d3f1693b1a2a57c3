import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';

/** OpenCode: Export Markdown (ctrl+x x): writes `session-<first 8 of id>.md` (the server's file name, OpenCode's
 * `session-ses_afdb.md`) in the workspace and opens it. */
export function exportMarkdown(ctx: CommandContext) {
  return command('Export Markdown', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/export');
    const session = await targetSession(ctx, arg);
    const { content, filename } = await client.call('session/export', { sessionID: session.id, format: 'markdown' });
    const uri = vscode.Uri.joinPath(ctx.workspaceFolder, safeName(filename, `session-${session.id.slice(0, 8)}.md`));
    await vscode.workspace.fs.writeFile(uri, Buffer.from(content, 'utf8'));
    await vscode.window.showTextDocument(uri, { preview: false });
    void vscode.window.showInformationMessage(`OpenCode: exported "${session.title}" to ${vscode.workspace.asRelativePath(uri)}`);
  });
}

/** OpenCode: Export JSON: OpenCode's export format, to a file chosen in a save dialog. */
export function exportJson(ctx: CommandContext) {
  return command('Export JSON', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/export');
    const session = await targetSession(ctx, arg);
    const target = await vscode.window.showSaveDialog({
      title: 'OpenCode: Export JSON',
      defaultUri: vscode.Uri.joinPath(ctx.workspaceFolder, `${session.id}.json`),
      filters: { JSON: ['json'] },
    });
    if (!target) return;
    const { content } = await client.call('session/export', { sessionID: session.id, format: 'json' });
    await vscode.workspace.fs.writeFile(target, Buffer.from(content, 'utf8'));
    void vscode.window.showInformationMessage(`OpenCode: exported "${session.title}" to ${target.fsPath}`);
  });
}

/** The server names the file; never let that name leave the workspace folder. */
function safeName(name: string | undefined, fallback: string): string {
  return name && /^[A-Za-z0-9._-]+$/.test(name) && !name.startsWith('.') ? name : fallback;
}
