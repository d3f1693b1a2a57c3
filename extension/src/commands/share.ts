import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';

/** OpenCode: Share Session. Says what gets uploaded before it does; the link goes to the clipboard. */
export function share(ctx: CommandContext) {
  return command('Share Session', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/share');
    const session = await targetSession(ctx, arg);
    const answer = await vscode.window.showWarningMessage(
      `Share "${session.title}" as a link?`,
      {
        modal: true,
        detail:
          'This uploads the whole session to the share server (enterprise.url in opencode.json, else opncd.ai): its title, ' +
          'every message, tool call and tool output, and the file diffs. Later changes keep syncing until you unshare. ' +
          'Anyone with the link can read it.',
      },
      'Share',
    );
    if (answer !== 'Share') return;
    const updated = await client.call('session/share', { sessionID: session.id });
    const url = updated.share?.url;
    if (ctx.state.currentId === updated.id) await ctx.state.setCurrent(updated);
    if (url) await vscode.env.clipboard.writeText(url);
    void vscode.window.showInformationMessage(url ? `OpenCode: shared; link copied: ${url}` : 'OpenCode: shared.');
  });
}

/** OpenCode: Unshare Session: deletes the shared copy; the link stops working. */
export function unshare(ctx: CommandContext) {
  return command('Unshare Session', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/unshare');
    const session = await targetSession(ctx, arg);
    const answer = await vscode.window.showWarningMessage(
      `Unshare "${session.title}"?`,
      { modal: true, detail: 'The shared copy is deleted from the share server and the link stops working.' },
      'Unshare',
    );
    if (answer !== 'Unshare') return;
    await client.call('session/unshare', { sessionID: session.id });
    await ctx.state.refresh();
    void vscode.window.showInformationMessage(`OpenCode: "${session.title}" is no longer shared.`);
  });
}
