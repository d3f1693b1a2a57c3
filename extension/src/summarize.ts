// The client's side of compaction with the editor's own model (issue 6, summarizer 3): the server asks
// `compaction/summarize {sessionID, messages, prompt}` and we answer `{text}` with a summary written by a VS Code
// language model (vscode.lm: GitHub Copilot or any other chat model provider the user has).
//
// What the server does with our answer (CompactionService + ClientSummarizer): a text is written as the summary
// message. An error reply, or no handler (MethodNotFound), fails the compaction with SummarizerFailed (-32141), whose
// message carries ours ("The client could not summarize: <our message>"), and nothing is written; the server does
// NOT fall back to another summarizer by itself. An automatic compaction that fails this way is skipped and logged
// on the server's stderr (the "OpenCode RPC" output channel). The Compact command offers the offline summarizer
// when the editor's model could not write the summary.
import * as vscode from 'vscode';
import { ResponseError, type CancellationToken } from 'vscode-jsonrpc';
import type { CompactionSummarizeParams, CompactionSummarizeResult, ContextMessage } from './protocol.generated';
import type { Log, Sidecar } from './sidecar';

export const SUMMARIZE_METHOD = 'compaction/summarize';

/** LSP's RequestFailed: the request was valid, answering it failed. `data.reason` says why. */
export const REQUEST_FAILED = -32803;
/** LSP's RequestCancelled. */
export const REQUEST_CANCELLED = -32800;

/** Why we refused or failed: `disabled`, `noModel`, `empty`, or a LanguageModelError code (`NoPermissions`…). */
export interface SummarizeErrorData {
  reason: string;
  model?: string;
}

/** `opencodeRpc.summarizer`: `server` lets the server choose (its opencode.json; offline by default); `vscode`
 * makes Compact ask for the client summarizer, which this module answers with a VS Code language model. */
export type SummarizerSetting = 'server' | 'vscode';

export function summarizerSetting(): SummarizerSetting {
  return vscode.workspace.getConfiguration('opencodeRpc').get<string>('summarizer') === 'vscode' ? 'vscode' : 'server';
}

/**
 * `opencodeRpc.summarizerModel` as a selector: `vendor/family` (e.g. `copilot/gpt-4o`), or a model id. Empty: any
 * model (VS Code's order; we take the first).
 */
export function modelSelector(spec: string | undefined): vscode.LanguageModelChatSelector | undefined {
  const s = spec?.trim();
  if (!s) return undefined;
  const slash = s.indexOf('/');
  return slash > 0 ? { vendor: s.slice(0, slash), family: s.slice(slash + 1) } : { id: s };
}

type Reporter = vscode.Progress<{ message?: string; increment?: number }>;

/**
 * Where a summary's progress goes. The Compact command attaches its own (cancellable) progress notification for the
 * session it compacts, so one notification shows the whole compaction; a request nobody attached to (an automatic
 * compaction, another client's call) gets a notification of its own.
 */
export class SummaryProgress {
  private readonly sinks = new Map<string, Reporter>();

  attach(sessionID: string, progress: Reporter): { dispose(): void } {
    this.sinks.set(sessionID, progress);
    return { dispose: () => this.sinks.get(sessionID) === progress && this.sinks.delete(sessionID) };
  }

  get(sessionID: string): Reporter | undefined {
    return this.sinks.get(sessionID);
  }
}

/** The share of the model's input window the conversation may use; the rest is for the prompt and slack between
 * the server's o200k counts and the model's own tokenizer. */
const INPUT_SHARE = 0.85;

const JUSTIFICATION = 'OpenCode compacts a long session by asking a language model to summarize its earlier messages.';

/** The request handler for {@link SUMMARIZE_METHOD}. */
export function createSummarizeHandler(progress: SummaryProgress, log: Log) {
  return async (raw: unknown, token: CancellationToken): Promise<CompactionSummarizeResult> => {
    const params = raw as CompactionSummarizeParams;
    if (!params || typeof params.prompt !== 'string' || !Array.isArray(params.messages)) {
      throw new ResponseError(-32602, 'compaction/summarize needs {sessionID, messages, prompt}.');
    }

    if (summarizerSetting() !== 'vscode') {
      throw failed(
        'disabled',
        'summarizing with a VS Code language model is turned off in this editor; set "opencodeRpc.summarizer" to "vscode" to allow it.',
      );
    }

    const spec = vscode.workspace.getConfiguration('opencodeRpc').get<string>('summarizerModel') ?? '';
    const models = await vscode.lm.selectChatModels(modelSelector(spec));
    const model = models[0];
    if (!model) {
      throw failed(
        'noModel',
        spec.trim()
          ? `no VS Code language model matches "opencodeRpc.summarizerModel": "${spec.trim()}".`
          : 'no VS Code language model is available (install and sign in to a chat model provider such as GitHub Copilot), or set "opencodeRpc.summarizer" to "server".',
      );
    }

    const attached = progress.get(params.sessionID);
    const run = (report: Reporter, uiToken?: vscode.CancellationToken) => summarizeWith(model, params, report, token, uiToken, log);
    if (attached) return run(attached);
    return vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `OpenCode: summarizing the session with ${model.name}…`, cancellable: true },
      (p, uiToken) => run(p, uiToken),
    );
  };
}

/** Registers the handler on the sidecar (and on every restart of it). */
export function registerSummarizer(client: Sidecar, progress: SummaryProgress, log: Log): { dispose(): void } {
  return client.onRequest(SUMMARIZE_METHOD, createSummarizeHandler(progress, log));
}

async function summarizeWith(
  model: vscode.LanguageModelChat,
  params: CompactionSummarizeParams,
  report: Reporter,
  serverToken: CancellationToken,
  uiToken: vscode.CancellationToken | undefined,
  log: Log,
): Promise<CompactionSummarizeResult> {
  // Either side may cancel: the server ($/cancelRequest, e.g. the Compact notification was cancelled) or the user on
  // our own notification. The model request gets one token for both.
  const cts = new vscode.CancellationTokenSource();
  const subs = [serverToken.onCancellationRequested(() => cts.cancel()), uiToken?.onCancellationRequested(() => cts.cancel())];
  if (serverToken.isCancellationRequested || uiToken?.isCancellationRequested) cts.cancel();
  const cancelled = () => new ResponseError<SummarizeErrorData>(REQUEST_CANCELLED, 'The summary was cancelled.', { reason: 'cancelled', model: model.name });
  try {
    const promptTokens = await countTokens(model, (params.system ? params.system + '\n\n' : '') + params.prompt, cts.token);
    const budget = Math.max(0, Math.floor(model.maxInputTokens * INPUT_SHARE) - promptTokens);
    const { messages, included, omitted } = chatMessages(params.messages, params.prompt, budget, params.system);
    if (included === 0 && omitted > 0) {
      throw failed('tooLarge', `the newest message alone is larger than ${model.name}'s input window (${model.maxInputTokens} tokens).`, model.name);
    }
    log.appendLine(
      `[client] compaction/summarize ${params.sessionID}: ${model.name} (${model.vendor}/${model.family}), ${included} message(s)` +
        (omitted ? `, ${omitted} older one(s) left out to fit ${model.maxInputTokens} input tokens` : ''),
    );
    report.report({ message: `asking ${model.name} for the summary…` });
    const response = await model.sendRequest(messages, { justification: JUSTIFICATION }, cts.token);
    let text = '';
    for await (const chunk of response.text) {
      if (cts.token.isCancellationRequested) break;
      text += chunk;
      report.report({ message: `${model.name} is writing the summary (${text.length} characters)` });
    }
    if (cts.token.isCancellationRequested) throw cancelled();
    text = text.trim();
    if (!text) throw failed('empty', `${model.name} returned an empty summary.`, model.name);
    return { text };
  } catch (e) {
    if (e instanceof ResponseError) throw e;
    if (cts.token.isCancellationRequested || e instanceof vscode.CancellationError) throw cancelled();
    if (e instanceof vscode.LanguageModelError) {
      throw failed(e.code || 'LanguageModelError', `${model.name} could not write the summary (${e.code || 'error'}): ${e.message}`, model.name);
    }
    throw failed('error', `${model.name} could not write the summary: ${(e as Error)?.message ?? String(e)}`, model.name);
  } finally {
    for (const s of subs) s?.dispose();
    cts.dispose();
  }
}

function failed(reason: string, message: string, model?: string): ResponseError<SummarizeErrorData> {
  return new ResponseError<SummarizeErrorData>(REQUEST_FAILED, message, { reason, ...(model ? { model } : {}) });
}

async function countTokens(model: vscode.LanguageModelChat, text: string, token: vscode.CancellationToken): Promise<number> {
  try {
    return await model.countTokens(text, token);
  } catch {
    return Math.ceil(text.length / 3); // a provider that cannot count: err on the large side
  }
}

/**
 * The model messages: the compaction agent's instructions (`system`) as the first user message (VS Code's chat API
 * has no system role), the conversation being replaced, then the server's compaction prompt as the last user
 * message (as OpenCode sends it). Text and tool calls (name, input, result) are kept; reasoning is left out (the
 * visible answers and tool results carry what the summary needs, and reasoning is often the largest part). When the
 * conversation does not fit in `budget` tokens (the server's counts), the newest messages are kept, with the first
 * one (the original request) if it still fits, and a note says how many were left out. Consecutive messages of one
 * role are merged, since some providers require the roles to alternate.
 */
export function chatMessages(
  messages: ContextMessage[],
  prompt: string,
  budget: number,
  system?: string,
): { messages: vscode.LanguageModelChatMessage[]; included: number; omitted: number } {
  const rendered = messages.map((m) => ({ role: m.role, text: render(m), tokens: m.tokens })).filter((m) => m.text.length > 0);
  let used = 0;
  let start = rendered.length;
  while (start > 0 && used + rendered[start - 1].tokens <= budget) used += rendered[--start].tokens;
  const kept = rendered.slice(start);
  let omitted = start;
  if (omitted > 0 && used + rendered[0].tokens <= budget) {
    kept.unshift(rendered[0]);
    omitted--;
  }
  if (omitted > 0) {
    kept.splice(kept.length && kept[0] === rendered[0] ? 1 : 0, 0, {
      role: 'user',
      text: `[${omitted} earlier message(s) of this conversation are left out here: they did not fit in the model's context window.]`,
      tokens: 0,
    });
  }
  const included = rendered.length - omitted;
  kept.push({ role: 'user', text: prompt, tokens: 0 });
  if (system) kept.unshift({ role: 'user', text: system, tokens: 0 });

  const merged: { role: string; text: string }[] = [];
  for (const m of kept) {
    const last = merged[merged.length - 1];
    if (last && last.role === m.role) last.text += '\n\n' + m.text;
    else merged.push({ role: m.role, text: m.text });
  }
  return {
    messages: merged.map((m) => (m.role === 'assistant' ? vscode.LanguageModelChatMessage.Assistant(m.text) : vscode.LanguageModelChatMessage.User(m.text))),
    included,
    omitted,
  };
}

function render(m: ContextMessage): string {
  const out: string[] = [];
  for (const c of m.content) {
    if (c.type === 'text' && c.text) out.push(c.text);
    else if (c.type === 'tool') {
      const input = c.input === undefined ? '' : ` ${JSON.stringify(c.input)}`;
      out.push(`[tool ${c.tool ?? '?'}${input}]\n${c.output ?? ''}`);
    }
  }
  return out.join('\n\n');
}
