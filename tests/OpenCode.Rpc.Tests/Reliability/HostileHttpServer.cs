using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OpenCode.Rpc.Tests.Reliability;

/// <summary>
/// A raw HTTP/1.1 server on 127.0.0.1 that answers exactly the bytes a test writes: lying Content-Length, a body that
/// never ends, one byte a second, a gzip bomb. Each connection reads the request head, records its path and hands
/// the socket's stream to the responder, then closes. Everything stops when the server is disposed, so no test can
/// leave a loop running.
/// </summary>
public sealed class HostileHttpServer : IAsyncDisposable
{
    private readonly TcpListener listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource stop = new();
    private readonly Func<string, Stream, CancellationToken, Task> respond;
    private readonly Task loop;
    private readonly List<Task> connections = [];
    private readonly List<string> requests = [];

    public HostileHttpServer(Func<string, Stream, CancellationToken, Task> respond)
    {
        this.respond = respond;
        listener.Start();
        Port = ((IPEndPoint)listener.LocalEndpoint).Port;
        loop = Task.Run(AcceptAsync);
    }

    public int Port { get; }

    public string Base => $"http://127.0.0.1:{Port}";

    /// <summary>The request paths received so far.</summary>
    public IReadOnlyList<string> Requests
    {
        get
        {
            lock (requests)
            {
                return requests.ToList();
            }
        }
    }

    /// <summary>Completes when the first request has arrived.</summary>
    public TaskCompletionSource FirstRequest { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>A complete response with a body; <paramref name="headers"/> are extra lines such as "Location: …".</summary>
    public static async Task WriteAsync(Stream s, int status, string contentType, byte[] body, CancellationToken ct, params string[] headers)
    {
        var head = new StringBuilder($"HTTP/1.1 {status} X\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n");
        foreach (var h in headers)
        {
            head.Append(h).Append("\r\n");
        }

        head.Append("\r\n");
        await s.WriteAsync(Encoding.ASCII.GetBytes(head.ToString()), ct);
        await s.WriteAsync(body, ct);
        await s.FlushAsync(ct);
    }

    public static Task WriteAsync(Stream s, int status, string contentType, string body, CancellationToken ct, params string[] headers) =>
        WriteAsync(s, status, contentType, Encoding.UTF8.GetBytes(body), ct, headers);

    /// <summary>Only the head: the body is up to the caller (chunked, trickled, or missing).</summary>
    public static Task WriteHeadAsync(Stream s, int status, CancellationToken ct, params string[] headers) =>
        s.WriteAsync(Encoding.ASCII.GetBytes($"HTTP/1.1 {status} X\r\n{string.Join("", headers.Select(h => h + "\r\n"))}\r\n"), ct).AsTask();

    private async Task AcceptAsync()
    {
        while (!stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await listener.AcceptTcpClientAsync(stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }

            lock (connections)
            {
                connections.Add(ServeAsync(client));
            }
        }
    }

    private async Task ServeAsync(TcpClient client)
    {
        using (client)
        {
            try
            {
                var s = client.GetStream();
                string head = await ReadHeadAsync(s);
                string path = head.Split(' ') is { Length: > 1 } parts ? parts[1] : string.Empty;
                lock (requests)
                {
                    requests.Add(path);
                }

                FirstRequest.TrySetResult();
                await respond(path, s, stop.Token);
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
            {
                // the client went away (which is what several rows provoke) or the server is stopping
            }
        }
    }

    private async Task<string> ReadHeadAsync(Stream s)
    {
        var buf = new List<byte>();
        var one = new byte[1];
        while (buf.Count < 16 * 1024)
        {
            if (await s.ReadAsync(one, stop.Token) == 0)
            {
                break;
            }

            buf.Add(one[0]);
            if (buf.Count >= 4 && buf[^4] == '\r' && buf[^3] == '\n' && buf[^2] == '\r' && buf[^1] == '\n')
            {
                break;
            }
        }

        return Encoding.ASCII.GetString(buf.ToArray());
    }

    public async ValueTask DisposeAsync()
    {
        stop.Cancel();
        listener.Stop();
        await loop.WaitAsync(TimeSpan.FromSeconds(10));
        Task[] open;
        lock (connections)
        {
            open = connections.ToArray();
        }

        await Task.WhenAll(open).WaitAsync(TimeSpan.FromSeconds(10));
        stop.Dispose();
    }
}
