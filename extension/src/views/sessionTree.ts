import * as vscode from 'vscode';
import type { SessionInfo } from '../protocol';
import type { SessionState } from '../state';
import { describeSession } from '../util';

export interface SessionNode {
  session: SessionInfo;
  children: SessionNode[];
}

/**
 * Parent→child edges from a session/tree result. The tree is read tolerantly: any object holding a `session` (or
 * being one) nests the sessions found in its arrays (children, descendants, forks) under it; `ancestors` are
 * skipped, since they are listed elsewhere in the tree anyway.
 */
export function treeEdges(tree: unknown): [string, string][] {
  const edges: [string, string][] = [];
  const visit = (node: unknown, parent: string | undefined, depth: number) => {
    if (!node || typeof node !== 'object' || depth > 64) return;
    const o = node as Record<string, unknown>;
    const s = (o.session && typeof o.session === 'object' ? o.session : typeof o.id === 'string' && o.id.startsWith('ses_') ? o : undefined) as
      | SessionInfo
      | undefined;
    if (s?.id && parent && parent !== s.id) edges.push([parent, s.id]);
    for (const [k, v] of Object.entries(o)) {
      if (k === 'ancestors' || !Array.isArray(v)) continue;
      for (const item of v) visit(item, s?.id ?? parent, depth + 1);
    }
  };
  visit(tree, undefined, 0);
  return edges;
}

/** Nests sessions: child sessions under their parentID, forks under their origin when the server told us. */
export function buildForest(sessions: SessionInfo[], extraEdges: [string, string][] = []): SessionNode[] {
  const nodes = new Map(sessions.map((s) => [s.id, { session: s, children: [] as SessionNode[] }]));
  const parentOf = new Map<string, string>();
  for (const s of sessions) if (s.parentID && nodes.has(s.parentID)) parentOf.set(s.id, s.parentID);
  for (const [p, c] of extraEdges) if (nodes.has(p) && nodes.has(c) && !parentOf.has(c)) parentOf.set(c, p);
  // Guard against cycles from bad data: a node whose ancestor chain loops back stays a root.
  const roots: SessionNode[] = [];
  for (const [id, node] of nodes) {
    let p = parentOf.get(id);
    const seen = new Set([id]);
    while (p && !seen.has(p)) {
      seen.add(p);
      p = parentOf.get(p);
    }
    const parent = parentOf.get(id);
    if (parent && !p) nodes.get(parent)!.children.push(node);
    else roots.push(node);
  }
  return roots;
}

export class SessionTreeProvider implements vscode.TreeDataProvider<SessionNode>, vscode.Disposable {
  private readonly changed = new vscode.EventEmitter<SessionNode | undefined>();
  readonly onDidChangeTreeData = this.changed.event;
  private readonly sub: vscode.Disposable;
  private roots: SessionNode[] | undefined;

  constructor(private readonly state: SessionState) {
    this.sub = state.onDidChange(() => this.refresh());
  }

  refresh(): void {
    this.roots = undefined;
    this.changed.fire(undefined);
  }

  async load(): Promise<SessionNode[]> {
    const client = this.state.client;
    const sessions = await client.call('session/list', {});
    let edges: [string, string][] = [];
    const current = this.state.currentId;
    if (current && client.supports('session/tree') && sessions.some((s) => s.id === current)) {
      edges = treeEdges(await client.call('session/tree', { sessionID: current }).catch(() => undefined));
    }
    return (this.roots = buildForest(sessions, edges));
  }

  async getChildren(node?: SessionNode): Promise<SessionNode[]> {
    if (node) return node.children;
    try {
      return this.roots ?? (await this.load());
    } catch {
      return [];
    }
  }

  getTreeItem(node: SessionNode): vscode.TreeItem {
    const s = node.session;
    const item = new vscode.TreeItem(
      s.title,
      node.children.length ? vscode.TreeItemCollapsibleState.Expanded : vscode.TreeItemCollapsibleState.None,
    );
    item.id = s.id;
    item.description = describeSession(s);
    item.tooltip = `${s.title}\n${s.id}`;
    const isCurrent = s.id === this.state.currentId;
    item.iconPath = new vscode.ThemeIcon(isCurrent ? 'check' : s.share?.url ? 'link' : 'comment-discussion');
    item.contextValue = isCurrent ? 'opencodeSession.current' : 'opencodeSession';
    item.command = { command: 'opencodeRpc.openSession', title: 'Open Session', arguments: [s.id] };
    return item;
  }

  dispose(): void {
    this.sub.dispose();
    this.changed.dispose();
  }
}
