using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core;
using StreamJsonRpc;
using StreamJsonRpc.Protocol;

namespace OpenCode.Rpc.Server;

/// <summary>
/// The one place where exceptions become JSON-RPC errors. The message is a sentence for a person; the
/// data is structured (<c>{kind, field, reason, …}</c>); the stack trace goes to stderr, never to the wire.
/// </summary>
public static class ErrorMapper
{
    public static int CodeOf(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidInput => ErrorCodes.InvalidParams,
        ErrorKind.SessionNotFound => ErrorCodes.SessionNotFound,
        ErrorKind.MessageNotFound => ErrorCodes.MessageNotFound,
        ErrorKind.PartNotFound => ErrorCodes.PartNotFound,
        ErrorKind.StoreCorrupt => ErrorCodes.StoreCorrupt,
        ErrorKind.Conflict => ErrorCodes.Conflict,
        ErrorKind.LimitExceeded => ErrorCodes.LimitExceeded,
        ErrorKind.SnapshotUnavailable => ErrorCodes.SnapshotUnavailable,
        ErrorKind.RevertConflict => ErrorCodes.RevertConflict,
        ErrorKind.PathOutsideProject => ErrorCodes.PathOutsideProject,
        ErrorKind.Unsupported => ErrorCodes.Unsupported,
        ErrorKind.ShareNotFound => ErrorCodes.ShareNotFound,
        ErrorKind.FetchFailed => ErrorCodes.FetchFailed,
        ErrorKind.CompactionNoProgress => ErrorCodes.CompactionNoProgress,
        ErrorKind.SummarizerFailed => ErrorCodes.SummarizerFailed,
        ErrorKind.ShareDisabled => ErrorCodes.ShareDisabled,
        _ => ErrorCodes.InternalError,
    };

    public static JsonRpcError.ErrorDetail Map(string method, Exception exception, Action<string> log)
    {
        var ex = Unwrap(exception);
        switch (ex)
        {
            case OpenCodeException oc:
                var data = new JsonObject { ["kind"] = oc.Kind.ToString() };
                foreach (var (k, v) in oc.Details)
                {
                    data[k] = v switch
                    {
                        null => null,
                        string s => s,
                        JsonNode n => n.DeepClone(),
                        IEnumerable<string> list => new JsonArray(list.Select(x => (JsonNode?)x).ToArray()),
                        long l => l,
                        int i => i,
                        bool b => b,
                        _ => v.ToString(),
                    };
                }

                return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)CodeOf(oc.Kind), Message = oc.Message, Data = data };
            case RpcProtocolException rp:
                return new JsonRpcError.ErrorDetail { Code = (JsonRpcErrorCode)rp.Code, Message = rp.Message, Data = rp.Data };
            case OperationCanceledException:
                return new JsonRpcError.ErrorDetail { Code = JsonRpcErrorCode.RequestCanceled, Message = "The request was cancelled." };
            case JsonException je:
                return new JsonRpcError.ErrorDetail
                {
                    Code = JsonRpcErrorCode.InvalidParams,
                    Message = $"Invalid params: {je.Message}",
                    Data = new JsonObject { ["kind"] = "InvalidInput", ["field"] = "params", ["reason"] = je.Message },
                };
            default:
                log($"internal error in {method}: {ex}");
                return new JsonRpcError.ErrorDetail
                {
                    Code = JsonRpcErrorCode.InternalError,
                    Message = $"The server could not complete {method}: {ex.Message}",
                    Data = new JsonObject { ["kind"] = "Internal" },
                };
        }
    }

    private static Exception Unwrap(Exception ex)
    {
        while (true)
        {
            switch (ex)
            {
                case TargetInvocationException { InnerException: { } inner }:
                    ex = inner;
                    continue;
                case AggregateException { InnerExceptions.Count: 1 } agg:
                    ex = agg.InnerExceptions[0];
                    continue;
                default:
                    return ex;
            }
        }
    }
}

/// <summary>A protocol-level failure (not initialized, shutting down, …) with its JSON-RPC code.</summary>
public sealed class RpcProtocolException(int code, string message, JsonObject? data = null) : Exception(message)
{
    public int Code { get; } = code;

    public new JsonObject? Data { get; } = data;
}
