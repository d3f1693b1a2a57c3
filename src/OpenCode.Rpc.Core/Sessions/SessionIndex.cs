using System.Collections.Concurrent;
using System.IO.Enumeration;
using System.Text.Json;
using System.Text.Json.Nodes;
using OpenCode.Rpc.Core.Json;

namespace OpenCode.Rpc.Core.Sessions;

/// <summary>
/// An in-memory index of each project's session files, so listing 10,000 sessions costs a stat of one
/// folder rather than 10,000 parses. The JSON files stay the source of truth:
/// <list type="bullet">
/// <item>Every atomic write renames into the folder, which changes the folder's mtime; an unchanged mtime
/// means nothing was added, replaced or removed, by us or by another process.</item>
/// <item>Filesystem timestamps are coarse (a kernel tick), so a scan whose folder mtime is too close to the
/// scan itself is not trusted ("racy git"): the next list rescans. A rescan re-reads only files whose
/// mtime or size changed.</item>
/// </list>
/// </summary>
internal sealed class SessionIndex(Action<string> warn)
{
    private static readonly TimeSpan RacyWindow = TimeSpan.FromSeconds(2);
    private readonly ConcurrentDictionary<string, ProjectEntries> projects = new(StringComparer.Ordinal);

    /// <summary>
    /// The project's sessions, newest first (time.updated descending, then id), as an immutable snapshot.
    /// A warm list is one folder stat: the order and each session's wire encoding are kept until a file changes.
    /// </summary>
    public IReadOnlyList<Entry> Get(string projectId, string dir)
    {
        var entries = projects.GetOrAdd(projectId, _ => new ProjectEntries());
        lock (entries)
        {
            DateTime dirMtime = Directory.Exists(dir) ? Directory.GetLastWriteTimeUtc(dir) : DateTime.MinValue;
            if (!entries.Trusted || entries.DirMtime != dirMtime)
            {
                Rescan(entries, dir, dirMtime);
            }

            if (entries.Snapshot is null)
            {
                var sorted = entries.ById.Values.ToArray();
                Array.Sort(sorted, static (a, b) => a.Updated != b.Updated ? b.Updated.CompareTo(a.Updated) : string.CompareOrdinal(a.Id, b.Id));
                entries.Snapshot = sorted;
            }

            return entries.Snapshot;
        }
    }

    /// <summary>Records a write we made ourselves so the next list need not re-read that file.</summary>
    public void Put(string projectId, string file, JsonObject info)
    {
        var fi = new FileInfo(file);
        Put(projectId, file, info, fi.LastWriteTimeUtc, fi.Length);
    }

    /// <summary>As <see cref="Put(string, string, JsonObject)"/>, for a writer that knows the file's mtime and length.</summary>
    public void Put(string projectId, string file, JsonObject info, DateTime lastWriteUtc, long length)
    {
        var entries = projects.GetOrAdd(projectId, _ => new ProjectEntries());
        lock (entries)
        {
            string id = Path.GetFileNameWithoutExtension(file);
            entries.ById[id] = new Entry(id, info, lastWriteUtc, length);
            entries.Snapshot = null;
            entries.Trusted = false; // the folder mtime moved; confirm on the next list
        }
    }

    public void Remove(string projectId, string sessionId)
    {
        if (projects.TryGetValue(projectId, out var entries))
        {
            lock (entries)
            {
                entries.ById.Remove(sessionId);
                entries.Snapshot = null;
                entries.Trusted = false;
            }
        }
    }

    public string? ProjectOf(string sessionId)
    {
        foreach (var (projectId, entries) in projects)
        {
            lock (entries)
            {
                if (entries.ById.ContainsKey(sessionId))
                {
                    return projectId;
                }
            }
        }

        return null;
    }

    private void Rescan(ProjectEntries entries, string dir, DateTime dirMtime)
    {
        DateTime scanStart = DateTime.UtcNow;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        if (Directory.Exists(dir))
        {
            var files = new FileSystemEnumerable<(string Path, DateTime Mtime, long Size)>(
                dir,
                (ref FileSystemEntry e) => (e.ToFullPath(), e.LastWriteTimeUtc.UtcDateTime, e.Length),
                new EnumerationOptions { IgnoreInaccessible = true, AttributesToSkip = 0 })
            {
                ShouldIncludePredicate = (ref FileSystemEntry e) => !e.IsDirectory && e.FileName.EndsWith(".json", StringComparison.Ordinal),
            };

            foreach (var (path, mtime, size) in files)
            {
                string id = Path.GetFileNameWithoutExtension(path);
                seen.Add(id);
                if (entries.ById.TryGetValue(id, out var cached) && cached.Mtime == mtime && cached.Size == size
                    && scanStart - mtime > RacyWindow)
                {
                    continue;
                }

                try
                {
                    var obj = JsJson.Parse(File.ReadAllBytes(path)) as JsonObject
                        ?? throw new JsonException("not a JSON object");
                    entries.ById[id] = new Entry(id, obj, mtime, size);
                }
                catch (FileNotFoundException)
                {
                    seen.Remove(id);
                }
                catch (Exception ex) when (ex is JsonException or IOException or UnauthorizedAccessException)
                {
                    // A corrupt file must not take the whole list down: report it with its path and skip it.
                    warn($"skipping unreadable session file {path}: {ex.Message}");
                    entries.ById.Remove(id);
                    seen.Remove(id);
                }
            }
        }

        foreach (var id in entries.ById.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            entries.ById.Remove(id);
        }

        entries.DirMtime = dirMtime;
        entries.Trusted = scanStart - dirMtime > RacyWindow;
        entries.Snapshot = null;
    }

    /// <summary>One session file as last read. Replaced, never changed, when the file changes.</summary>
    internal sealed class Entry(string id, JsonObject info, DateTime mtime, long size)
    {
        private byte[]? utf8;

        public string Id { get; } = id;

        public JsonObject Info { get; } = info;

        public DateTime Mtime { get; } = mtime;

        public long Size { get; } = size;

        public long Updated { get; } = SessionStore.Updated(info);

        /// <summary>
        /// The session as compact JSON, encoded once per file version: a warm list of 10,000 sessions then costs
        /// copies, not 10,000 serializations. Two threads may both encode it the first time; they produce the same
        /// bytes (JsJson.Parse materializes every node, so concurrent reads of Info are safe).
        /// </summary>
        public byte[] Utf8 => utf8 ??= Encode();

        private byte[] Encode()
        {
            var buffer = new System.Buffers.ArrayBufferWriter<byte>((int)Math.Clamp(Size, 256, 1 << 20));
            using (var w = new Utf8JsonWriter(buffer))
            {
                Info.WriteTo(w);
            }

            return buffer.WrittenSpan.ToArray();
        }
    }

    private sealed class ProjectEntries
    {
        public Dictionary<string, Entry> ById { get; } = new(StringComparer.Ordinal);

        public DateTime DirMtime { get; set; }

        public bool Trusted { get; set; }

        public Entry[]? Snapshot { get; set; }
    }
}
