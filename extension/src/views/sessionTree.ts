import * as vscode from 'vscode';
import type { SessionInfo } from '../protocol';
import type { SessionState } from '../state';
import { describeSession } from '../util';

export interface SessionNode {
  session: SessionInfo;
  children: SessionNode[];
}

interface TreeNodeLike {
  sessionID?: string;
  session?: { id?: string } | null;
  children?: TreeNodeLike[];
}

/** How many sessions' session/tree the view asks for (the current one plus the most recent): forks are root
 * sessions on disk, so only the server knows where they came from. */
const TREE_LOOKUPS = 20;

/** How many sessions the view lists, most recently updated first. A project of 10,000 sessions is a 2.5 MB
 * session/list to parse on every reload and a tree no one scrolls; Switch Session lists (and filters) them all. */
export const TREE_LIMIT = 500;

/**
 * Parent→child edges from a session/tree result `{session, ancestors (nearest first), descendants (nested)}`:
 * each ancestor is the origin of the one below it, and descendants nest under the session.
 */
export function treeEdges(tree: unknown): [string, string][] {
  const t = tree as { session?: { id?: string }; ancestors?: TreeNodeLike[]; descendants?: TreeNodeLike[] } | undefined;
  const root = t?.session?.id;
  if (!root) return [];
  const idOf = (n: TreeNodeLike) => n.sessionID ?? n.session?.id;
  const edges: [string, string][] = [];
  let below = root;
  for (const a of t.ancestors ?? []) {
    const id = idOf(a);
    if (!id) break;
    edges.push([id, below]);
    below = id;
  }
  const walk = (parent: string, nodes: TreeNodeLike[] | undefined, depth: number) => {
    if (depth > 256) return;
    for (const n of nodes ?? []) {
      const id = idOf(n);
      if (!id) continue;
      edges.push([parent, id]);
      walk(id, n.children, depth + 1);
    }
  };
  walk(root, t.descendants, 0);
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

  private timer: NodeJS.Timeout | undefined;

  /** Set after each load: a line for the view's message when the list was cut at the limit, else undefined. */
  onLoaded: ((note: string | undefined) => void) | undefined;

  constructor(
    private readonly state: SessionState,
    private readonly limit = TREE_LIMIT,
  ) {
    // Only what can change the list (not every streamed part), and at most once per burst: each reload is a
    // session/list (up to `limit` sessions).
    this.sub = state.onDidChangeSessions(() => this.scheduleRefresh());
  }

  scheduleRefresh(delayMs = 250): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.refresh();
    }, delayMs);
  }

  refresh(): void {
    this.roots = undefined;
    this.changed.fire(undefined);
  }

  async load(): Promise<SessionNode[]> {
    const client = this.state.client;
    const sessions = await client.call('session/list', { limit: this.limit });
    this.onLoaded?.(
      sessions.length >= this.limit
        ? `The ${this.limit} most recently updated sessions. Switch Session lists them all.`
        : undefined,
    );
    const edges: [string, string][] = [];
    if (client.supports('session/tree')) {
      const current = this.state.currentId;
      const ids = [...new Set([...(current ? [current] : []), ...sessions.map((s) => s.id)])]
        .filter((id) => sessions.some((s) => s.id === id))
        .slice(0, TREE_LOOKUPS);
      const trees = await Promise.all(ids.map((id) => client.call('session/tree', { sessionID: id }).catch(() => undefined)));
      for (const t of trees) edges.push(...treeEdges(t));
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
    if (this.timer) clearTimeout(this.timer);
    this.sub.dispose();
    this.changed.dispose();
  }
}
