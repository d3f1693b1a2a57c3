using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Nerdbank.Streams;
using OpenCode.Rpc.Server;
using OpenCode.Rpc.Tests.Infrastructure;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>A client that writes raw bytes to a server (in-proc or a real process) and reads the frames it answers:
/// lets a test send what no well-behaved client would.</summary>
public sealed class RawWire : IAsyncDisposable
{
    private readonly Stream writer;
    private readonly Stream reader;
    private readonly RpcServer? server;
    private readonly Process? process;
    private readonly List<string> log = [];
    private readonly byte[] buf = new byte[64 * 1024];
    private readonly MemoryStream pending = new();

    private RawWire(Stream writer, Stream reader, RpcServer? server, Process? process)
    {
        this.writer = writer;
        this.reader = reader;
        this.server = server;
        this.process = process;
    }

    public Process? Process => process;

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

    public static async Task<RawWire> InProcAsync(TestDirs dirs, long maxFrameBytes = ServerOptions.DefaultMaxFrameBytes, bool initialize = true, ServerOptions? options = null)
    {
        var (s, c) = FullDuplexStream.CreatePair();
        RawWire? w = null;
        // The test's own global config dir: a test must never read the real ~/.config/opencode.
        options ??= new ServerOptions(dirs.DataDir, dirs.ProjectDir, maxFrameBytes, ConfigDir: dirs.ConfigDir);
        var server = RpcServer.Start(s, s, options, m => { if (w is not null) { lock (w.log) { w.log.Add(m); } } });
        w = new RawWire(c, c, server, null);
        if (initialize)
        {
            await w.InitializeAsync(dirs);
        }

        return w;
    }

    public static async Task<RawWire> ProcessAsync(TestDirs dirs, long? maxFrameBytes = null, bool initialize = true)
    {
        var args = new List<string> { "serve", "--data-dir", dirs.DataDir, "--directory", dirs.ProjectDir };
        if (maxFrameBytes is { } m)
        {
            args.AddRange(["--max-frame-bytes", m.ToString(CultureInfo.InvariantCulture)]);
        }

        var p = Process.Start(ProcessServer.SidecarStartInfo(args))!;
        var w = new RawWire(p.StandardInput.BaseStream, p.StandardOutput.BaseStream, null, p);
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) { lock (w.log) { w.log.Add(e.Data); } } };
        p.BeginErrorReadLine();
        if (initialize)
        {
            await w.InitializeAsync(dirs);
        }

        return w;
    }

    private async Task InitializeAsync(TestDirs dirs)
    {
        var r = await RequestAsync(1_000_000, Methods.Initialize, $$"""{"directory":{{JsonSerializer.Serialize(dirs.ProjectDir)}}}""");
        Assert.True(r.TryGetProperty("result", out _), r.ToString());
    }

    public static byte[] Frame(string json) => Frame(Encoding.UTF8.GetBytes(json));

    public static byte[] Frame(byte[] body) => [.. Encoding.ASCII.GetBytes($"Content-Length: {body.Length}\r\n\r\n"), .. body];

    public async Task SendAsync(byte[] bytes)
    {
        await writer.WriteAsync(bytes).AsTask().WaitAsync(RpcTestClient.Timeout);
        await writer.FlushAsync().WaitAsync(RpcTestClient.Timeout);
    }

    public Task SendAsync(string raw) => SendAsync(Encoding.UTF8.GetBytes(raw));

    public void CloseInput() => writer.Dispose();

    /// <summary>Sends a well-formed request and waits for the answer with its id (skipping other frames).</summary>
    public async Task<JsonElement> RequestAsync(long id, string method, string paramsJson = "{}")
    {
        await SendAsync(Frame($$"""{"jsonrpc":"2.0","id":{{id}},"method":"{{method}}","params":{{paramsJson}}}"""));
        return await ReadUntilAsync(f => f.TryGetProperty("id", out var i) && i.ValueKind == JsonValueKind.Number && i.GetInt64() == id);
    }

    public async Task<JsonElement> ReadUntilAsync(Func<JsonElement, bool> match)
    {
        while (true)
        {
            var f = await ReadFrameAsync() ?? throw new EndOfStreamException("the server closed its output");
            if (match(f))
            {
                return f;
            }
        }
    }

    /// <summary>The next error frame (skipping notifications).</summary>
    public Task<JsonElement> NextErrorAsync() => ReadUntilAsync(f => f.TryGetProperty("error", out _));

    /// <summary>Reads one frame; null at end of stream.</summary>
    public async Task<JsonElement?> ReadFrameAsync()
    {
        while (true)
        {
            var data = pending.ToArray();
            int sep = data.AsSpan().IndexOf("\r\n\r\n"u8);
            if (sep >= 0)
            {
                string header = Encoding.ASCII.GetString(data, 0, sep);
                int len = int.Parse(header.Split("Content-Length:")[1].Split('\r')[0].Trim(), CultureInfo.InvariantCulture);
                if (data.Length >= sep + 4 + len)
                {
                    var el = JsonDocument.Parse(data.AsMemory(sep + 4, len)).RootElement.Clone();
                    pending.SetLength(0);
                    pending.Write(data, sep + 4 + len, data.Length - sep - 4 - len);
                    return el;
                }
            }

            int n = await reader.ReadAsync(buf).AsTask().WaitAsync(RpcTestClient.Timeout);
            if (n == 0)
            {
                return null;
            }

            pending.Write(buf, 0, n);
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            writer.Dispose();
        }
        catch (IOException)
        {
        }

        if (process is not null)
        {
            if (!process.WaitForExit(10_000))
            {
                process.Kill(entireProcessTree: true);
            }

            process.Dispose();
        }

        if (server is not null)
        {
            server.Dispose();
            try
            {
                await server.Completion.WaitAsync(RpcTestClient.Timeout);
            }
            catch (Exception)
            {
            }
        }
    }
}
