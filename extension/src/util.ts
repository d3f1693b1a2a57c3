import * as vscode from 'vscode';
import { ResponseError } from 'vscode-jsonrpc';
import type { SessionInfo } from './protocol';
import type { SessionState } from './state';
import type { SummaryProgress } from './summarize';
import { UnsupportedMethodError } from './sidecar';

/** Everything a command factory needs. */
export interface CommandContext {
  state: SessionState;
  /** The workspace folder the sidecar was initialized with. */
  workspaceFolder: vscode.Uri;
  output: vscode.OutputChannel;
  /** The session selected in the session view, if it has one (keybindings there pass no argument). */
  selection?: () => string | undefined;
  /** Where `compaction/summarize` reports its progress while Compact runs (see summarize.ts). */
  summaries?: SummaryProgress;
}

/** `<updated, local time> • <last 8 of id>`: the Switch Session description (OpenCode's session list shows the same). */
export function describeSession(s: SessionInfo): string {
  return `${new Date(s.time.updated).toLocaleString()} • ${s.id.slice(-8)}`;
}

/** A command argument from the tree view or another command: a session, a tree node holding one, or an id. */
export function sessionIdFromArg(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg.startsWith('ses_')) return arg;
  if (arg && typeof arg === 'object') {
    const o = arg as { id?: unknown; session?: { id?: unknown } };
    if (typeof o.session?.id === 'string') return o.session.id;
    if (typeof o.id === 'string' && o.id.startsWith('ses_')) return o.id;
  }
  return undefined;
}

export class NoSessionError extends Error {
  constructor() {
    super('No current OpenCode session: run "OpenCode: New Session" or "OpenCode: Switch Session" first.');
  }
}

/**
 * The session a command acts on: its argument, else the current one. Rename and Delete, whose keys are bound in the
 * session view (ctrl+r, ctrl+d), fall back to the view's selection first (`useSelection`).
 */
export async function targetSession(ctx: CommandContext, arg: unknown, useSelection = false): Promise<SessionInfo> {
  const id = sessionIdFromArg(arg) ?? (useSelection ? ctx.selection?.() : undefined) ?? ctx.state.currentId;
  if (!id) throw new NoSessionError();
  // Always re-read: another client (or the agent) may have changed it since the last notification.
  return ctx.state.client.call('session/get', { sessionID: id });
}

/**
 * Runs a command body and turns every failure into a message a person can act on. A method the server does not
 * offer gets a "not supported by this server" warning, never silence.
 */
export function command<A extends unknown[]>(title: string, body: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await body(...args);
    } catch (e) {
      if (e instanceof UnsupportedMethodError) {
        void vscode.window.showWarningMessage(
          `OpenCode: ${title} is not supported by this server: opencode-rpc ${e.serverVersion} does not offer ${e.method}.`,
        );
      } else if (e instanceof NoSessionError) {
        void vscode.window.showInformationMessage(e.message);
      } else if (e instanceof ResponseError) {
        void vscode.window.showErrorMessage(`OpenCode: ${title} failed: ${e.message}`);
      } else {
        void vscode.window.showErrorMessage(`OpenCode: ${title} failed: ${(e as Error)?.message ?? String(e)}`);
      }
    }
  };
}

export function isCancelled(e: unknown): boolean {
  return e instanceof ResponseError && e.code === -32800;
}
