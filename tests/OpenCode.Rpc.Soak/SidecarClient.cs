using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OpenCode.Rpc.Soak;

/// <summary>A minimal JSON-RPC client over a sidecar process's stdin/stdout (LSP framing), safe for concurrent
/// requests. No StreamJsonRpc: the driver must survive the server dying at any byte.</summary>
public sealed class SidecarClient : IAsyncDisposable
{
    private readonly Process process;
    private readonly Stream input;
    private readonly SemaphoreSlim writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonObject>> pending = new();
    private readonly Task readLoop;
    private long nextId;

    public SidecarClient(ProcessStartInfo psi)
    {
        psi.RedirectStandardInput = true;
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) { Stderr.Enqueue(e.Data); } };
        process.BeginErrorReadLine();
        input = process.StandardInput.BaseStream;
        readLoop = Task.Run(() => ReadLoopAsync(process.StandardOutput.BaseStream));
    }

    public Process Process => process;

    public ConcurrentQueue<string> Stderr { get; } = new();

    public ConcurrentQueue<JsonObject> Notifications { get; } = new();

    /// <summary>Sends a request; the task fails with <see cref="IOException"/> if the process dies before answering.</summary>
    public async Task<JsonObject> CallAsync(string method, JsonObject? args = null, CancellationToken ct = default)
    {
        long id = Interlocked.Increment(ref nextId);
        var tcs = new TaskCompletionSource<JsonObject>(TaskCreationOptions.RunContinuationsAsynchronously);
        pending[id] = tcs;
        var msg = new JsonObject { ["jsonrpc"] = "2.0", ["id"] = id, ["method"] = method, ["params"] = args ?? new JsonObject() };
        byte[] body = Encoding.UTF8.GetBytes(msg.ToJsonString());
        byte[] head = Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n");
        await writeLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            await input.WriteAsync(head, ct).ConfigureAwait(false);
            await input.WriteAsync(body, ct).ConfigureAwait(false);
            await input.FlushAsync(ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            pending.TryRemove(id, out _);
            throw new IOException("the sidecar is gone", ex);
        }
        finally
        {
            writeLock.Release();
        }

        return await tcs.Task.WaitAsync(ct).ConfigureAwait(false);
    }

    /// <summary>Calls and returns <c>result</c>; throws <see cref="RpcErrorException"/> on an error answer.</summary>
    public async Task<JsonNode?> ResultAsync(string method, JsonObject? args = null, CancellationToken ct = default)
    {
        var r = await CallAsync(method, args, ct).ConfigureAwait(false);
        if (r["error"] is JsonObject e)
        {
            throw new RpcErrorException((int)e["code"]!, (string?)e["message"] ?? string.Empty);
        }

        return r["result"];
    }

    private async Task ReadLoopAsync(Stream output)
    {
        var buf = new byte[64 * 1024];
        var acc = new MemoryStream();
        try
        {
            while (true)
            {
                int n = await output.ReadAsync(buf).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }

                acc.Write(buf, 0, n);
                while (TryTakeFrame(acc, out var frame))
                {
                    var obj = JsonNode.Parse(frame) as JsonObject;
                    if (obj is null)
                    {
                        continue;
                    }

                    if (obj["id"] is JsonValue v && v.TryGetValue(out long id) && pending.TryRemove(id, out var tcs))
                    {
                        tcs.TrySetResult(obj);
                    }
                    else if (obj["method"] is not null)
                    {
                        Notifications.Enqueue(obj);
                    }
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or JsonException)
        {
        }

        foreach (var (id, tcs) in pending)
        {
            if (pending.TryRemove(id, out _))
            {
                tcs.TrySetException(new IOException("the sidecar closed its output before answering"));
            }
        }
    }

    private static bool TryTakeFrame(MemoryStream acc, out byte[] frame)
    {
        frame = [];
        var data = acc.GetBuffer().AsSpan(0, (int)acc.Length);
        int sep = data.IndexOf("\r\n\r\n"u8);
        if (sep < 0)
        {
            return false;
        }

        string header = Encoding.ASCII.GetString(data[..sep]);
        int len = int.Parse(header.Split("Content-Length:")[1].Split('\r')[0].Trim(), CultureInfo.InvariantCulture);
        if (data.Length < sep + 4 + len)
        {
            return false;
        }

        frame = data.Slice(sep + 4, len).ToArray();
        var rest = data[(sep + 4 + len)..].ToArray();
        acc.SetLength(0);
        acc.Write(rest);
        return true;
    }

    /// <summary>SIGKILL: no chance to flush or clean up.</summary>
    public void Kill()
    {
        try
        {
            process.Kill();
        }
        catch (InvalidOperationException)
        {
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            input.Dispose();
        }
        catch (IOException)
        {
        }

        if (!process.WaitForExit(20_000))
        {
            Kill();
        }

        await process.WaitForExitAsync().ConfigureAwait(false);
        try
        {
            await readLoop.ConfigureAwait(false);
        }
        catch (Exception)
        {
        }

        process.Dispose();
    }
}

public sealed class RpcErrorException(int code, string message) : Exception($"{code}: {message}")
{
    public int Code { get; } = code;
}
