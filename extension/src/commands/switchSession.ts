import * as vscode from 'vscode';
import type { SessionInfo } from '../protocol';
import { command, describeSession, type CommandContext } from '../util';

interface SessionItem extends vscode.QuickPickItem {
  session: SessionInfo;
}

/**
 * OpenCode: Switch Session (ctrl+x l). A searchable QuickPick of the project's sessions, newest first: label = title,
 * description = `<updated, local time> • <last 8 of id>`. Archived sessions appear only after the archive toggle.
 */
export function switchSession(ctx: CommandContext) {
  return command('Switch Session', async () => {
    const client = ctx.state.client;
    await client.start();
    const pick = vscode.window.createQuickPick<SessionItem>();
    pick.title = 'OpenCode: Switch Session';
    pick.placeholder = 'Search sessions by title, date or id';
    pick.matchOnDescription = true;
    let showArchived = false;
    const toggle = () => ({
      iconPath: new vscode.ThemeIcon(showArchived ? 'archive' : 'eye-closed'),
      tooltip: showArchived ? 'Hide archived sessions' : 'Show archived sessions',
    });
    const load = async () => {
      pick.busy = true;
      pick.buttons = [toggle()];
      const sessions = await client.call('session/list', showArchived ? { archived: true } : {});
      const current = ctx.state.currentId;
      pick.items = sessions.map((s) => ({
        label: s.title,
        description: describeSession(s),
        detail: s.time.archived ? 'archived' : undefined,
        iconPath: s.time.archived ? new vscode.ThemeIcon('archive') : s.id === current ? new vscode.ThemeIcon('check') : undefined,
        session: s,
      }));
      pick.busy = false;
    };
    const chosen = await new Promise<SessionInfo | undefined>((resolve, reject) => {
      pick.onDidTriggerButton(() => {
        showArchived = !showArchived;
        load().catch(reject);
      });
      pick.onDidAccept(() => {
        resolve(pick.selectedItems[0]?.session);
        pick.hide();
      });
      pick.onDidHide(() => resolve(undefined));
      load().then(() => pick.show(), reject);
    }).finally(() => pick.dispose());
    if (!chosen) return;
    await ctx.state.setCurrent(chosen);
  });
}
