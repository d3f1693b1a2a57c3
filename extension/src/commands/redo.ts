import * as vscode from 'vscode';
import { command, targetSession, type CommandContext } from '../util';
import { runWithConflictCheck } from './undo';

/** OpenCode: Redo (ctrl+x r): one turn forward, or everything back when the last undone turn is redone. */
export function redo(ctx: CommandContext) {
  return command('Redo', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/redo');
    const session = await targetSession(ctx, arg);
    if (!session.revert) {
      void vscode.window.showInformationMessage(`OpenCode: nothing to redo in "${session.title}".`);
      return;
    }
    const result = await runWithConflictCheck('Redo', (force) =>
      client.call('session/redo', force ? { sessionID: session.id, force } : { sessionID: session.id }),
    );
    if (!result) return;
    if (result.session) await ctx.state.setCurrent(result.session);
    else await ctx.state.refresh();
    const n = result.files?.length ?? 0;
    void vscode.window.showInformationMessage(`OpenCode: redone${n ? `, ${n} file${n === 1 ? '' : 's'} restored` : ''}.`);
  });
}
