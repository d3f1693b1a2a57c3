import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';

/** OpenCode: Delete Session, after a confirmation. Files in the project are not touched. */
export function deleteSession(ctx: CommandContext) {
  return command('Delete Session', async (arg?: unknown) => {
    const session = await targetSession(ctx, arg, true);
    const answer = await vscode.window.showWarningMessage(
      `Delete the OpenCode session "${session.title}"?`,
      { modal: true, detail: 'Its messages and child sessions are deleted too. Files in your project are not changed.' },
      'Delete',
    );
    if (answer !== 'Delete') return;
    await ctx.state.client.call('session/delete', { sessionID: session.id });
    if (ctx.state.currentId === session.id) await ctx.state.setCurrent(undefined);
    void vscode.window.showInformationMessage(`OpenCode: deleted "${session.title}"`);
  });
}
