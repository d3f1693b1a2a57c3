using System.ClientModel;
using System.ClientModel.Primitives;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.AI;
using OpenCode.Rpc.Core.Config;
using OpenAI;

namespace OpenCode.Rpc.Core.Compaction;

/// <summary>An OpenAI-compatible chat endpoint from opencode.json: <c>provider.&lt;id&gt;.options.{baseURL, apiKey,
/// timeout}</c>; the key may be <c>{env:VAR}</c> or come from <c>provider.&lt;id&gt;.env</c>.</summary>
public sealed record ModelEndpoint(Uri BaseUrl, string ApiKey, string ProviderID, string ModelID, TimeSpan Timeout)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    public static bool HasBaseUrl(OpenCodeConfig config, string providerId) =>
        config.Raw["provider"]?[providerId]?["options"]?["baseURL"] is JsonValue v && v.GetValueKind() == JsonValueKind.String;

    /// <summary>The endpoint for <paramref name="providerId"/>/<paramref name="modelId"/>; fails with a sentence
    /// naming the missing key when the provider has no <c>baseURL</c>.</summary>
    public static ModelEndpoint Resolve(OpenCodeConfig config, string providerId, string modelId, Func<string, string?> env)
    {
        var options = config.Raw["provider"]?[providerId]?["options"] as JsonObject;
        string? baseUrl = ContextBuilder.Str(options?["baseURL"]);
        if (baseUrl is null || !Uri.TryCreate(Expand(baseUrl, env), UriKind.Absolute, out var uri))
        {
            throw new SummarizerFailedException($"The model summarizer needs provider.{providerId}.options.baseURL (an OpenAI-compatible endpoint) in opencode.json.");
        }

        string? key = ContextBuilder.Str(options?["apiKey"]) is { } k ? Expand(k, env) : null;
        if (string.IsNullOrEmpty(key) && config.Raw["provider"]?[providerId]?["env"] is JsonArray names)
        {
            key = names.Select(n => ContextBuilder.Str(n)).OfType<string>().Select(env).FirstOrDefault(v => !string.IsNullOrEmpty(v));
        }

        var timeout = ContextBuilder.Number(options?["timeout"]) is double ms && ms > 0 ? TimeSpan.FromMilliseconds(ms) : DefaultTimeout;
        return new ModelEndpoint(uri, string.IsNullOrEmpty(key) ? "none" : key, providerId, modelId, timeout);
    }

    /// <summary>OpenCode's <c>{env:NAME}</c> substitution.</summary>
    private static string Expand(string value, Func<string, string?> env)
    {
        var sb = new StringBuilder();
        int i = 0;
        while (i < value.Length)
        {
            int start = value.IndexOf("{env:", i, StringComparison.Ordinal);
            int end = start < 0 ? -1 : value.IndexOf('}', start);
            if (start < 0 || end < 0)
            {
                sb.Append(value, i, value.Length - i);
                break;
            }

            sb.Append(value, i, start - i).Append(env(value[(start + 5)..end]) ?? "");
            i = end + 1;
        }

        return sb.ToString();
    }
}

/// <summary>A summarizer failed (endpoint unreachable, HTTP error, timeout, bad reply). Nothing was written.</summary>
public sealed class SummarizerFailedException(string message, Exception? inner = null)
    : OpenCodeException(ErrorKind.SummarizerFailed, message, inner);

/// <summary>
/// Summarizes with an OpenAI-compatible chat-completions endpoint through Microsoft.Extensions.AI, streaming, with
/// OpenCode's compaction prompt: the compaction agent's system prompt, the conversation (media stripped, tool
/// outputs cut at 2,000 characters as OpenCode does), then the template request.
/// </summary>
public sealed class ModelSummarizer(ModelEndpoint endpoint) : ISummarizer
{
    private const int MaxToolOutput = 2000;

    public SummarizerKind Kind => SummarizerKind.Model;

    public (string ProviderID, string ModelID)? Model => (endpoint.ProviderID, endpoint.ModelID);

    public async Task<string> SummarizeAsync(SummaryRequest request, CancellationToken ct)
    {
        var options = new OpenAIClientOptions
        {
            Endpoint = endpoint.BaseUrl,
            NetworkTimeout = endpoint.Timeout,
            RetryPolicy = new ClientRetryPolicy(maxRetries: 0), // a compaction is retried by the caller, not behind its back
        };
        IChatClient chat = new OpenAI.Chat.ChatClient(endpoint.ModelID, new ApiKeyCredential(endpoint.ApiKey), options).AsIChatClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(endpoint.Timeout);
        var messages = BuildMessages(request);
        var text = new StringBuilder();
        try
        {
            request.Progress?.Report($"Summarizing with {endpoint.ProviderID}/{endpoint.ModelID}");
            await foreach (var update in chat.GetStreamingResponseAsync(messages, new ChatOptions { ModelId = endpoint.ModelID }, timeout.Token).ConfigureAwait(false))
            {
                if (update.Text is { Length: > 0 } delta)
                {
                    text.Append(delta);
                    request.Progress?.Report($"Summarizing: {text.Length} characters received");
                }
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new SummarizerFailedException($"The summary from {endpoint.BaseUrl} did not finish within {endpoint.Timeout.TotalSeconds:0.#} s.");
        }
        catch (Exception ex) when (ex is ClientResultException or HttpRequestException or IOException or JsonException or InvalidOperationException)
        {
            throw new SummarizerFailedException($"The summarizer endpoint {endpoint.BaseUrl} failed: {ex.Message}", ex);
        }
        finally
        {
            chat.Dispose();
        }

        string summary = text.ToString().Trim();
        return summary.Length > 0 ? summary : throw new SummarizerFailedException($"The summarizer endpoint {endpoint.BaseUrl} returned an empty summary.");
    }

    public static List<ChatMessage> BuildMessages(SummaryRequest request)
    {
        var list = new List<ChatMessage> { new(ChatRole.System, CompactionPrompt.System) };
        foreach (var m in request.Head)
        {
            string text = Render(m);
            if (text.Length > 0)
            {
                list.Add(new ChatMessage(m.Role == "assistant" ? ChatRole.Assistant : ChatRole.User, text));
            }
        }

        list.Add(new ChatMessage(ChatRole.User, request.Prompt));
        return list;
    }

    /// <summary>A model message as plain text: what an LLM reads when tools are off.</summary>
    public static string Render(ContextMessage m)
    {
        var sb = new StringBuilder();
        foreach (var c in m.Content)
        {
            if (c.Type == "text" && !string.IsNullOrEmpty(c.Text))
            {
                sb.Append(c.Text).Append('\n');
            }
            else if (c.Type == "tool")
            {
                string output = c.Output ?? "";
                if (output.Length > MaxToolOutput)
                {
                    output = output[..MaxToolOutput] + "\n[truncated]";
                }

                sb.Append("[tool ").Append(c.Tool).Append(' ').Append(c.Input?.ToJsonString() ?? "{}").Append("]\n").Append(output).Append('\n');
            }
        }

        return sb.ToString().TrimEnd();
    }
}
