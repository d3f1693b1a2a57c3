import type { PreviewContent } from '../preview';
import type { CommandContext } from '../util';
import type { SessionTreeProvider } from '../views/sessionTree';
import { archiveSession } from './archiveSession';
import { compact } from './compact';
import { deleteSession } from './deleteSession';
import { exportJson, exportMarkdown } from './exportSession';
import { fork } from './fork';
import { importSession } from './importSession';
import { newSession } from './newSession';
import { redo } from './redo';
import { renameSession } from './renameSession';
import { share, unshare } from './share';
import { openSession, showSessionTree } from './sessionTree';
import { switchSession } from './switchSession';
import { undo } from './undo';

export interface Services {
  previews: PreviewContent;
  tree: SessionTreeProvider;
}

type Handler = (...args: never[]) => Promise<void>;

/** Every command, by id; package.json contributes the same ids (a test keeps them equal). */
export function createCommands(ctx: CommandContext, s: Services): Record<string, Handler> {
  return {
    'opencodeRpc.newSession': newSession(ctx),
    'opencodeRpc.switchSession': switchSession(ctx),
    'opencodeRpc.renameSession': renameSession(ctx),
    'opencodeRpc.deleteSession': deleteSession(ctx),
    'opencodeRpc.archiveSession': archiveSession(ctx),
    'opencodeRpc.undo': undo(ctx, s.previews),
    'opencodeRpc.redo': redo(ctx),
    'opencodeRpc.exportMarkdown': exportMarkdown(ctx),
    'opencodeRpc.exportJson': exportJson(ctx),
    'opencodeRpc.importSession': importSession(ctx),
    'opencodeRpc.compact': compact(ctx),
    'opencodeRpc.share': share(ctx),
    'opencodeRpc.unshare': unshare(ctx),
    'opencodeRpc.fork': fork(ctx),
    'opencodeRpc.showSessionTree': showSessionTree(ctx, s.tree),
    'opencodeRpc.openSession': openSession(ctx),
    'opencodeRpc.refreshSessions': async () => s.tree.refresh(),
  };
}
