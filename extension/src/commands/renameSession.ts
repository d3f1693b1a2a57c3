import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';

/** OpenCode: Rename Session (ctrl+r while the session view has focus). */
export function renameSession(ctx: CommandContext) {
  return command('Rename Session', async (arg?: unknown) => {
    const session = await targetSession(ctx, arg, true);
    const title = await vscode.window.showInputBox({
      title: 'OpenCode: Rename Session',
      prompt: 'New title',
      value: session.title,
      validateInput: (v) => (v.trim() ? undefined : 'The title cannot be empty'),
    });
    if (title === undefined || title.trim() === session.title) return;
    const updated = await ctx.state.client.call('session/update', { sessionID: session.id, title: title.trim() });
    if (ctx.state.currentId === updated.id) await ctx.state.setCurrent(updated);
  });
}
