import * as vscode from 'vscode';
import { command, type CommandContext } from '../util';

/** OpenCode: New Session (ctrl+x n). Like `/new task-name`: an optional name, else the server's default title. */
export function newSession(ctx: CommandContext) {
  return command('New Session', async (name?: string) => {
    if (name === undefined) {
      name = await vscode.window.showInputBox({
        title: 'OpenCode: New Session',
        prompt: 'Name of the new session (optional)',
        placeHolder: 'task-name',
      });
      if (name === undefined) return; // Escape: no session
    }
    const session = await ctx.state.client.call('session/create', name.trim() ? { title: name.trim() } : {});
    await ctx.state.setCurrent(session);
    void vscode.window.showInformationMessage(`OpenCode: new session "${session.title}"`);
  });
}
