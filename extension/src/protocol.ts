// The extension's view of the protocol.
//
// Params: when protocol.generated.ts (made from protocol/opencode-rpc.openrpc.json) has a method, its params type
// is the one the compiler checks our calls against, so a renamed or removed field in the document breaks the
// build instead of the wire. Methods that are specified in the issues but not yet in the document fall back to the
// params written below, taken from issues 3-7.
//
// Results: read through the small shapes below (only the fields the UI uses), because the server passes OpenCode's
// own objects through with every field it has, known or not.
import type { ProtocolRequests } from './protocol.generated';

export interface SessionTime {
  created: number;
  updated: number;
  archived?: number;
  [key: string]: unknown;
}

export interface SessionInfo {
  id: string;
  title: string;
  parentID?: string;
  directory?: string;
  time: SessionTime;
  share?: { url?: string; [key: string]: unknown };
  revert?: { messageID?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface MessageInfo {
  id: string;
  sessionID: string;
  role: 'user' | 'assistant' | string;
  time: { created: number; [key: string]: unknown };
  [key: string]: unknown;
}

export interface PartInfo {
  id: string;
  sessionID: string;
  messageID: string;
  type: string;
  text?: string;
  [key: string]: unknown;
}

export interface MessageWithParts {
  info: MessageInfo;
  parts: PartInfo[];
}

export interface RevertFile {
  path: string;
  status: 'modified' | 'added' | 'deleted' | string;
  [key: string]: unknown;
}

export interface FileDiff {
  file: string;
  before: string;
  after: string;
  additions?: number;
  deletions?: number;
  status?: string;
  [key: string]: unknown;
}

/** session/undo and session/redo: the session, the files touched, and the user prompt to put back (issue 3). The
 * prompt's exact field is read tolerantly by {@link promptTextOf}. */
export interface UndoResult {
  session?: SessionInfo;
  files?: RevertFile[];
  text?: string;
  prompt?: string | { text?: string; parts?: PartInfo[]; [key: string]: unknown };
  parts?: PartInfo[];
  /** False when only the conversation went back (snapshots off, non-git project…); `reason` says why. */
  filesReverted?: boolean;
  reason?: string | null;
  [key: string]: unknown;
}

export interface InitializeResult {
  serverInfo: { name: string; version: string };
  capabilities: {
    methods: string[];
    notifications: string[];
    project?: { id: string; worktree: string; directory: string; vcs?: string | null; dataDir?: string };
    [key: string]: unknown;
  };
}

type SessionRef = { sessionID: string };

/** What the extension calls, with the params and results it relies on. */
export interface Expected {
  initialize: {
    params: { processId?: number; clientInfo?: { name?: string; version?: string }; directory?: string };
    result: InitializeResult;
  };
  'session/create': { params: { title?: string; parentID?: string }; result: SessionInfo };
  'session/get': { params: SessionRef; result: SessionInfo };
  'session/list': {
    params: { search?: string; limit?: number; roots?: boolean; start?: number; archived?: boolean };
    result: SessionInfo[];
  };
  'session/update': { params: SessionRef & { title?: string; archived?: boolean }; result: SessionInfo };
  'session/delete': { params: SessionRef; result: boolean };
  'session/children': { params: SessionRef; result: SessionInfo[] };
  'message/list': { params: SessionRef & { limit?: number; before?: string }; result: MessageWithParts[] };
  // issue 3
  'session/revert': {
    params: SessionRef & {
      messageID: string;
      partID?: string;
      scope?: 'both' | 'conversation' | 'files';
      dryRun?: boolean;
      force?: boolean;
    };
    result: UndoResult;
  };
  'session/unrevert': { params: SessionRef & { dryRun?: boolean; force?: boolean }; result: UndoResult };
  'session/undo': { params: SessionRef & { dryRun?: boolean; force?: boolean }; result: UndoResult };
  'session/redo': { params: SessionRef & { dryRun?: boolean; force?: boolean }; result: UndoResult };
  'session/diff': { params: SessionRef & { messageID?: string }; result: FileDiff[] };
  // issue 4
  'session/export': {
    params: SessionRef & {
      format: 'json' | 'markdown';
      sanitize?: boolean;
      thinking?: boolean;
      toolDetails?: boolean;
      assistantMetadata?: boolean;
    };
    result: { content: string; filename: string };
  };
  'session/import': {
    params: { path?: string; url?: string; content?: string };
    result: { sessionID?: string; session?: SessionInfo | string | number; messages?: number; parts?: number; [key: string]: unknown };
  };
  // issue 5
  'session/fork': { params: SessionRef & { messageID?: string; inclusive?: boolean }; result: SessionInfo };
  'session/tree': { params: SessionRef; result: unknown };
  // issue 6
  'session/compact': { params: SessionRef & { auto?: boolean }; result: unknown };
  // issue 7
  'session/share': { params: SessionRef & { sanitize?: boolean }; result: SessionInfo };
  'session/unshare': { params: SessionRef; result: unknown };
}

export type MethodName = keyof Expected;

export type ParamsOf<M extends MethodName> = M extends keyof ProtocolRequests
  ? ProtocolRequests[M] extends { params: infer P }
    ? P
    : Expected[M]['params']
  : Expected[M]['params'];

export type ResultOf<M extends MethodName> = Expected[M]['result'];

/** The prompt text of the user message that session/undo took back, whichever field the server used. */
export function promptTextOf(r: UndoResult | null | undefined): string | undefined {
  if (!r) return undefined;
  if (typeof r.text === 'string') return r.text;
  if (typeof r.prompt === 'string') return r.prompt;
  if (r.prompt && typeof r.prompt.text === 'string') return r.prompt.text;
  const parts = (r.prompt && typeof r.prompt === 'object' ? r.prompt.parts : undefined) ?? r.parts;
  if (Array.isArray(parts)) {
    const texts = parts.filter((p) => p?.type === 'text' && typeof p.text === 'string' && !p['synthetic']).map((p) => p.text!);
    if (texts.length) return texts.join('\n');
  }
  return undefined;
}

/** The id of the session an import created: `sessionID`, or `session` as an id or an object. */
export function importedSessionId(r: ResultOf<'session/import'>): string | undefined {
  if (typeof r.sessionID === 'string') return r.sessionID;
  const s = r.session;
  if (typeof s === 'string') return s;
  return s && typeof s === 'object' ? s.id : undefined;
}
