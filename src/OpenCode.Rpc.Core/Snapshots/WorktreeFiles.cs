namespace OpenCode.Rpc.Core.Snapshots;

/// <summary>What is on disk at a worktree path, without following a symlink at the path itself.</summary>
public enum DiskKind
{
    Missing,
    File,
    Symlink,
    Directory,
}

/// <summary>
/// The only code that writes or deletes files in the user's worktree. It refuses any path that leaves the
/// worktree: <c>..</c>, an absolute path elsewhere, a path through a symlinked folder, or anything inside a
/// <c>.git</c> folder. A symlink at the path itself is replaced, never written through.
/// </summary>
public sealed class WorktreeFiles(string workTree)
{
    public string WorkTree { get; } = Path.TrimEndingDirectorySeparator(Path.GetFullPath(workTree));

    /// <summary>The worktree-relative path (forward slashes) of <paramref name="path"/> (absolute, or relative to the
    /// worktree), or null when it is not safely inside: outside lexically, the root itself, under <c>.git</c>, or below a
    /// symlinked folder.</summary>
    public string? Relative(string path)
    {
        if (string.IsNullOrEmpty(path) || path.Contains('\0'))
        {
            return null;
        }

        string full = Path.GetFullPath(Path.IsPathRooted(path) ? path : Path.Combine(WorkTree, path));
        string rel = Path.GetRelativePath(WorkTree, full);
        if (rel == "." || Path.IsPathRooted(rel) || rel == ".." || rel.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal))
        {
            return null;
        }

        var parts = rel.Split(Path.DirectorySeparatorChar);
        if (parts.Any(p => p.Length == 0 || p == ".." || string.Equals(p, ".git", StringComparison.OrdinalIgnoreCase)))
        {
            return null;
        }

        // Every existing ancestor below the root must be a real folder: a symlinked folder could lead anywhere.
        string dir = WorkTree;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            dir = Path.Combine(dir, parts[i]);
            var info = new DirectoryInfo(dir);
            if (info.LinkTarget is not null)
            {
                return null;
            }

            if (!info.Exists)
            {
                break;
            }
        }

        return string.Join('/', parts);
    }

    public string Absolute(string rel) => Path.Combine(WorkTree, rel.Replace('/', Path.DirectorySeparatorChar));

    public DiskKind Kind(string rel)
    {
        var fi = new FileInfo(Absolute(rel));
        if (fi.LinkTarget is not null)
        {
            return DiskKind.Symlink;
        }

        if (fi.Exists)
        {
            return DiskKind.File;
        }

        return Directory.Exists(fi.FullName) ? DiskKind.Directory : DiskKind.Missing;
    }

    /// <summary>Writes a file (or symlink) from snapshot content, atomically: a temp file in the same folder, then a
    /// rename over the path, which replaces a symlink there instead of following it.</summary>
    public void Write(string rel, byte[] content, string mode)
    {
        string path = Absolute(rel);
        string dir = Path.GetDirectoryName(path)!;
        EnsureRealDirectory(rel);
        if (Directory.Exists(path) && new DirectoryInfo(path).LinkTarget is null)
        {
            throw new IOException($"{path} is a folder; it is not replaced by a file.");
        }

        string tmp = Path.Combine(dir, $".{Path.GetFileName(path)}.ocrpc-{Guid.NewGuid():N}.tmp");
        try
        {
            if (mode == "120000")
            {
                File.CreateSymbolicLink(tmp, System.Text.Encoding.UTF8.GetString(content));
            }
            else
            {
                // No fsync, like git checkout: a revert of 100 files must not cost 200 fsyncs. The rename is still
                // atomic, and the revert journal rolls an interrupted revert back at the next start.
                using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None))
                {
                    fs.Write(content);
                }

                if (!OperatingSystem.IsWindows())
                {
                    var m = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
                    if (mode == "100755")
                    {
                        m |= UnixFileMode.UserExecute | UnixFileMode.GroupExecute | UnixFileMode.OtherExecute;
                    }

                    File.SetUnixFileMode(tmp, m);
                }
            }

            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try
            {
                File.Delete(tmp);
            }
            catch (IOException)
            {
            }

            throw;
        }
    }

    /// <summary>Removes the temp files <see cref="Write"/> leaves beside <paramref name="rel"/> when the process dies
    /// between creating one and renaming it over the file (found by the revert kill soak). Only our own names
    /// (<c>.&lt;name&gt;.ocrpc-&lt;32 hex&gt;.tmp</c>) are touched. Returns how many were removed.</summary>
    public int RemoveStrayTemps(string rel)
    {
        string path = Absolute(rel);
        string dir = Path.GetDirectoryName(path)!;
        if (Relative(path) is null || !Directory.Exists(dir) || new DirectoryInfo(dir).LinkTarget is not null)
        {
            return 0;
        }

        string prefix = $".{Path.GetFileName(path)}.ocrpc-";
        int n = 0;
        foreach (var f in Directory.EnumerateFiles(dir, prefix + "*.tmp"))
        {
            string name = Path.GetFileName(f);
            string id = name[prefix.Length..^".tmp".Length];
            if (id.Length == 32 && id.All(char.IsAsciiHexDigitLower))
            {
                File.Delete(f);
                n++;
            }
        }

        return n;
    }

    /// <summary>Deletes a file or symlink (never a folder), then removes the folders this leaves empty unless
    /// <paramref name="keepDir"/> says they existed in the state being restored.</summary>
    public void Delete(string rel, Func<string, bool> keepDir)
    {
        string path = Absolute(rel);
        var kind = Kind(rel);
        if (kind == DiskKind.Directory)
        {
            throw new IOException($"{path} is a folder; revert deletes files only.");
        }

        if (kind != DiskKind.Missing)
        {
            File.Delete(path);
        }

        var parts = rel.Split('/');
        for (int n = parts.Length - 1; n > 0; n--)
        {
            string dirRel = string.Join('/', parts[..n]);
            string dir = Absolute(dirRel);
            if (keepDir(dirRel) || !Directory.Exists(dir) || Directory.EnumerateFileSystemEntries(dir).Any())
            {
                break;
            }

            Directory.Delete(dir);
        }
    }

    private void EnsureRealDirectory(string rel)
    {
        var parts = rel.Split('/');
        string dir = WorkTree;
        for (int i = 0; i < parts.Length - 1; i++)
        {
            dir = Path.Combine(dir, parts[i]);
            var info = new DirectoryInfo(dir);
            if (info.LinkTarget is not null)
            {
                throw new PathOutsideProjectException([Absolute(rel)]);
            }

            if (File.Exists(dir))
            {
                throw new IOException($"{dir} is a file; cannot create a folder there.");
            }

            if (!info.Exists)
            {
                Directory.CreateDirectory(dir);
            }
        }
    }
}
