import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';

/** OpenCode: Archive Session. An archived session leaves the list; Switch Session shows it behind its toggle.
 * Running it on an archived session brings it back. */
export function archiveSession(ctx: CommandContext) {
  return command('Archive Session', async (arg?: unknown) => {
    const session = await targetSession(ctx, arg);
    const archive = !session.time.archived;
    const updated = await ctx.state.client.call('session/update', { sessionID: session.id, archived: archive });
    if (ctx.state.currentId === updated.id) await ctx.state.setCurrent(updated);
    void vscode.window.showInformationMessage(`OpenCode: ${archive ? 'archived' : 'unarchived'} "${updated.title}"`);
  });
}
