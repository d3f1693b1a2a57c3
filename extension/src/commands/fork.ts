import * as vscode from 'vscode';
import type { MessageWithParts } from '../protocol';
import { command, targetSession, type CommandContext } from '../util';

/** One line of a message for the picker: its first text, else its kind. */
export function messageLabel(m: MessageWithParts): string {
  const text = m.parts.find((p) => p.type === 'text' && typeof p.text === 'string' && p.text.trim())?.text;
  const line = text?.trim().split('\n')[0] ?? m.parts.map((p) => p.type).join(', ');
  return line.length > 80 ? line.slice(0, 79) + '…' : line || '(empty)';
}

/**
 * OpenCode: Fork Session: the whole session, before a picked prompt (as OpenCode's /fork), or right after a picked
 * answer. Unbound by default, as OpenCode's session_fork; "opencodeRpc.forkKeybinding" turns on
 * ctrl+x f.
 */
export function fork(ctx: CommandContext) {
  return command('Fork Session', async (arg?: unknown) => {
    const client = ctx.state.client;
    await client.require('session/fork');
    const session = await targetSession(ctx, arg);
    const messages = await client.call('message/list', { sessionID: session.id });
    type Item = vscode.QuickPickItem & { messageID?: string; inclusive?: boolean };
    // A user message: fork before it (OpenCode's /fork). An assistant message: fork right after it, keeping it
    // (session/fork's inclusive), to branch from an answer.
    const items: Item[] = [
      { label: 'Whole session', description: `${messages.length} messages` },
      ...messages.map((m) => {
        const user = m.info.role === 'user';
        return {
          label: messageLabel(m),
          description: `${user ? 'before this prompt' : 'after this answer'} • ${new Date(m.info.time.created).toLocaleString()}`,
          iconPath: new vscode.ThemeIcon(user ? 'account' : 'hubot'),
          messageID: m.info.id,
          inclusive: user ? undefined : true,
        };
      }),
    ];
    const pick = await vscode.window.showQuickPick(items, {
      title: `OpenCode: Fork "${session.title}"`,
      placeHolder: 'Fork the whole session, or from a message',
      matchOnDescription: true,
    });
    if (!pick) return;
    const forked = await client.call(
      'session/fork',
      pick.messageID
        ? { sessionID: session.id, messageID: pick.messageID, ...(pick.inclusive ? { inclusive: true } : {}) }
        : { sessionID: session.id },
    );
    await ctx.state.setCurrent(forked);
    void vscode.window.showInformationMessage(`OpenCode: forked into "${forked.title}"`);
  });
}
