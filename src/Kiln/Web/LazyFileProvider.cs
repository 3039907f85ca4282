using Microsoft.Extensions.FileProviders;
using Microsoft.Extensions.Primitives;

namespace Kiln.Web;

/// <summary>
/// A physical file provider over a directory that may not exist yet: the page is built separately (npm), and a server
/// started before the build should serve it once it appears rather than need a restart or create the folder itself.
/// </summary>
internal sealed class LazyFileProvider(string root) : IFileProvider, IDisposable
{
    private readonly Lock _gate = new();
    private PhysicalFileProvider? _inner;

    public string Root { get; } = root;

    public IFileInfo GetFileInfo(string subpath) => Inner()?.GetFileInfo(subpath) ?? new NotFoundFileInfo(subpath);

    public IDirectoryContents GetDirectoryContents(string subpath) => Inner()?.GetDirectoryContents(subpath) ?? NotFoundDirectoryContents.Singleton;

    public IChangeToken Watch(string filter) => NullChangeToken.Singleton;

    public void Dispose() => _inner?.Dispose();

    private PhysicalFileProvider? Inner()
    {
        if (_inner is not null || !Directory.Exists(Root))
        {
            return _inner;
        }

        lock (_gate)
        {
            // No file watching: the provider reads the disk on each lookup, and watchers cost inotify handles.
            return _inner ??= new PhysicalFileProvider(Root, Microsoft.Extensions.FileProviders.Physical.ExclusionFilters.Sensitive);
        }
    }
}
