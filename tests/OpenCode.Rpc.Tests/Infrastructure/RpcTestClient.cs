using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json;
using Nerdbank.Streams;
using OpenCode.Rpc.Server;
using StreamJsonRpc;
using Xunit.Abstractions;

namespace OpenCode.Rpc.Tests.Infrastructure;

/// <summary>A JSON-RPC client for tests: calls with anonymous-object params, records every notification, and
/// applies a timeout to every await. Subclasses connect it to an in-proc server or a real process.</summary>
public abstract class RpcTestClient : IAsyncDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    private readonly ConcurrentQueue<(string Method, JsonElement Params)> notifications = new();
    private readonly SemaphoreSlim notified = new(0);

    protected RpcTestClient(TestDirs dirs)
    {
        Dirs = dirs;
    }

    public TestDirs Dirs { get; }

    public JsonRpc Client { get; private set; } = null!;

    public IReadOnlyList<(string Method, JsonElement Params)> Notifications => notifications.ToList();

    /// <summary>Plain reflection-based System.Text.Json on the client side: tests send anonymous objects.</summary>
    public static SystemTextJsonFormatter ClientFormatter() => new() { JsonSerializerOptions = new JsonSerializerOptions(JsonSerializerDefaults.Web) };

    /// <summary>Every frame the server sent, as parsed JSON, in order: the traffic a failing test can show.</summary>
    public IReadOnlyList<JsonElement> Received => tap!.Frames;

    private FrameTap? tap;

    protected void Attach(Stream writer, Stream reader)
    {
        tap = new FrameTap(reader);
        Client = new TestJsonRpc(new HeaderDelimitedMessageHandler(writer, tap, ClientFormatter()));
        foreach (var name in OpenCode.Rpc.Server.Notifications.All)
        {
            var handler = new Action<JsonElement>(p => { notifications.Enqueue((name, p.Clone())); notified.Release(); });
            Client.AddLocalRpcMethod(handler.Method, handler.Target, new JsonRpcMethodAttribute(name) { UseSingleObjectParameterDeserialization = true });
        }

        Client.StartListening();
    }

    public async Task<JsonElement> InitializeAsync(string? directory = null)
    {
        return await CallAsync(Methods.Initialize, new { processId = Environment.ProcessId, clientInfo = new { name = "tests" }, directory = directory ?? Dirs.ProjectDir });
    }

    public async Task<JsonElement> CallAsync(string method, object? args = null)
    {
        var result = await Client.InvokeWithParameterObjectAsync<JsonElement>(method, args ?? new { }).WaitAsync(Timeout);
        return result.ValueKind == JsonValueKind.Undefined ? result : result.Clone();
    }

    /// <summary>Calls and expects an error; returns its code, message and data exactly as they came over the wire.</summary>
    public async Task<RpcError> ErrorAsync(string method, object? args = null)
    {
        await Assert.ThrowsAnyAsync<RemoteRpcException>(() => CallAsync(method, args));
        var frame = Received.Last(f => f.TryGetProperty("error", out _));
        var err = frame.GetProperty("error");
        return new RpcError(err.GetProperty("code").GetInt32(), err.GetProperty("message").GetString()!, err.TryGetProperty("data", out var d) ? d.Clone() : null);
    }

    /// <summary>Waits until a notification of <paramref name="method"/> matching <paramref name="match"/> has arrived.</summary>
    public async Task<JsonElement> WaitForNotificationAsync(string method, Func<JsonElement, bool>? match = null)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (DateTime.UtcNow < deadline)
        {
            foreach (var (m, p) in notifications)
            {
                if (m == method && (match is null || match(p)))
                {
                    return p;
                }
            }

            await notified.WaitAsync(TimeSpan.FromMilliseconds(200));
        }

        // Say what did arrive: a missed notification is then told apart from a wrong match or a late one.
        var got = notifications.ToList().TakeLast(20).Select(n => n.Method + " " + (n.Params.ValueKind == JsonValueKind.Object ? n.Params.ToString()[..Math.Min(160, n.Params.ToString().Length)] : ""));
        throw new TimeoutException($"no {method} notification arrived; the last ones were:\n" + string.Join("\n", got));
    }

    public abstract ValueTask DisposeAsync();
}

/// <summary>A read-through stream that also parses the LSP frames passing through it.</summary>
internal sealed class FrameTap(Stream inner) : Stream
{
    private readonly List<byte> buffer = [];
    private readonly List<JsonElement> frames = [];

    public IReadOnlyList<JsonElement> Frames
    {
        get
        {
            lock (frames)
            {
                return frames.ToList();
            }
        }
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] b, int offset, int count)
    {
        int n = inner.Read(b, offset, count);
        Record(b.AsSpan(offset, n));
        return n;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> b, CancellationToken ct = default)
    {
        int n = await inner.ReadAsync(b, ct);
        Record(b.Span[..n]);
        return n;
    }

    public override Task<int> ReadAsync(byte[] b, int offset, int count, CancellationToken ct) => ReadAsync(b.AsMemory(offset, count), ct).AsTask();

    private void Record(ReadOnlySpan<byte> data)
    {
        lock (frames)
        {
            buffer.AddRange(data.ToArray());
            while (true)
            {
                var arr = buffer.ToArray();
                int sep = arr.AsSpan().IndexOf("\r\n\r\n"u8);
                if (sep < 0)
                {
                    return;
                }

                string header = System.Text.Encoding.ASCII.GetString(arr, 0, sep);
                int len = int.Parse(header.Split("Content-Length:")[1].Split('\r')[0].Trim(), System.Globalization.CultureInfo.InvariantCulture);
                if (arr.Length < sep + 4 + len)
                {
                    return;
                }

                frames.Add(JsonDocument.Parse(arr.AsMemory(sep + 4, len)).RootElement.Clone());
                buffer.RemoveRange(0, sep + 4 + len);
            }
        }
    }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] b, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>StreamJsonRpc's client turns -32601/-32602 into an exception that drops <c>error.data</c>; tests need
/// the data, so every error becomes a <see cref="RemoteInvocationException"/> carrying it.</summary>
internal sealed class TestJsonRpc(IJsonRpcMessageHandler handler) : JsonRpc(handler)
{
    protected override RemoteRpcException CreateExceptionFromRpcError(StreamJsonRpc.Protocol.JsonRpcRequest request, StreamJsonRpc.Protocol.JsonRpcError response)
    {
        var err = response.Error!;
        object? data = err.GetData(typeof(JsonElement));
        return new RemoteInvocationException(err.Message, (int)err.Code, data);
    }
}

/// <summary>A JSON-RPC error as the client saw it.</summary>
public sealed record RpcError(int Code, string Message, JsonElement? Data)
{
    public string? Field => Data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("field", out var f) ? f.GetString() : null;

    public string? Kind => Data is { ValueKind: JsonValueKind.Object } d && d.TryGetProperty("kind", out var k) ? k.GetString() : null;
}

/// <summary>The real server on one end of an in-memory duplex pipe.</summary>
public sealed class InProcServer : RpcTestClient
{
    private readonly RpcServer server;
    private readonly List<string> log = [];

    private InProcServer(TestDirs dirs, ServerOptions? options)
        : base(dirs)
    {
        var (s, c) = FullDuplexStream.CreatePair();
        // A temp global config dir: a test must never read the real ~/.config/opencode.
        server = RpcServer.Start(s, s, options ?? new ServerOptions(dirs.DataDir, dirs.ProjectDir, ConfigDir: dirs.ConfigDir), m => { lock (log) { log.Add(m); } });
        Attach(c, c);
    }

    public RpcServer Server => server;

    public IReadOnlyList<string> Log
    {
        get
        {
            lock (log)
            {
                return log.ToList();
            }
        }
    }

    /// <summary>Starts a server and (unless told not to) sends initialize.</summary>
    public static async Task<InProcServer> StartAsync(TestDirs dirs, bool initialize = true, ServerOptions? options = null)
    {
        var s = new InProcServer(dirs, options);
        if (initialize)
        {
            await s.InitializeAsync();
        }

        return s;
    }

    public override async ValueTask DisposeAsync()
    {
        Client.Dispose();
        server.Dispose();
        try
        {
            await server.Completion.WaitAsync(Timeout);
        }
        catch (Exception)
        {
            // the connection was torn down under it; that is the point
        }
    }
}

/// <summary>The built <c>opencode-rpc serve</c> as a child process, spoken to over its real stdin/stdout.
/// stderr is captured and copied to the test output so a failure shows what the server said.</summary>
public sealed class ProcessServer : RpcTestClient
{
    private readonly Process process;
    private readonly List<string> stderr = [];
    private readonly ITestOutputHelper? output;

    private ProcessServer(TestDirs dirs, ITestOutputHelper? output, string[] extraArgs)
        : base(dirs)
    {
        this.output = output;
        var psi = SidecarStartInfo(["serve", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir, .. (extraArgs.Contains("--config-dir") ? [] : new[] { "--config-dir", dirs.ConfigDir }), .. extraArgs]);
        process = Process.Start(psi)!;
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                return;
            }

            lock (stderr)
            {
                stderr.Add(e.Data);
            }

            try
            {
                this.output?.WriteLine("[stderr] " + e.Data);
            }
            catch (InvalidOperationException)
            {
                // the test already finished
            }
        };
        process.BeginErrorReadLine();
        Attach(process.StandardInput.BaseStream, process.StandardOutput.BaseStream);
    }

    public Process Process => process;

    public IReadOnlyList<string> Stderr
    {
        get
        {
            lock (stderr)
            {
                return stderr.ToList();
            }
        }
    }

    /// <summary>How to run the built sidecar: <c>dotnet exec opencode-rpc.dll</c> from the test output folder.</summary>
    public static ProcessStartInfo SidecarStartInfo(IEnumerable<string> args, string? workingDirectory = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        psi.ArgumentList.Add("exec");
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "opencode-rpc.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return psi;
    }

    /// <summary>Runs a CLI verb to completion; returns exit code, stdout and stderr.</summary>
    public static async Task<(int Code, string Stdout, string Stderr)> RunCliAsync(IEnumerable<string> args, string? workingDirectory = null, string? stdin = null)
    {
        var psi = SidecarStartInfo(args, workingDirectory);
        using var p = Process.Start(psi)!;
        var outTask = p.StandardOutput.ReadToEndAsync();
        var errTask = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteAsync(stdin);
        }

        p.StandardInput.Close();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        return (p.ExitCode, await outTask, await errTask);
    }

    public static async Task<ProcessServer> StartAsync(TestDirs dirs, ITestOutputHelper? output = null, bool initialize = true, params string[] extraArgs)
    {
        var s = new ProcessServer(dirs, output, extraArgs);
        if (initialize)
        {
            await s.InitializeAsync();
        }

        return s;
    }

    /// <summary>Closes stdin and waits for the process; returns its exit code.</summary>
    public async Task<int> CloseAndWaitAsync()
    {
        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(Timeout);
        return process.ExitCode;
    }

    public override async ValueTask DisposeAsync()
    {
        Client.Dispose();
        try
        {
            process.StandardInput.Close();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // already gone
        }

        if (!process.WaitForExit(10_000))
        {
            process.Kill(entireProcessTree: true);
        }

        await Task.CompletedTask;
        process.Dispose();
    }
}
