import * as vscode from 'vscode';
import type { SessionTreeProvider } from '../views/sessionTree';
import { command, sessionIdFromArg, type CommandContext } from '../util';

/** OpenCode: Show Session Tree: focuses the sessions view (children and forks nested) and reloads it. */
export function showSessionTree(_ctx: CommandContext, tree: SessionTreeProvider) {
  return command('Show Session Tree', async () => {
    tree.refresh();
    await vscode.commands.executeCommand('opencodeRpc.sessions.focus');
  });
}

/** Makes a session current (a click in the tree). */
export function openSession(ctx: CommandContext) {
  return command('Open Session', async (arg?: unknown) => {
    const id = sessionIdFromArg(arg);
    if (!id) return;
    await ctx.state.setCurrent(await ctx.state.client.call('session/get', { sessionID: id }));
  });
}
