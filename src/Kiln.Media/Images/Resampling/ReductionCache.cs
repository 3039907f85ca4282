using System.Collections.Concurrent;

namespace Kiln.Media.Images.Resampling;

/// <summary>
/// The reductions of one kind (<typeparamref name="T"/>) kept per input and output size: images of one size come in
/// runs (a camera's photos, the same three thumbnail boxes), and computing the weights again for each would cost more
/// than using them. At most 32 sizes; past that the cache starts over.
/// </summary>
internal static class ReductionCache<T>
    where T : class
{
    private const int MaxCached = 32;

    private static readonly ConcurrentDictionary<(int In, int Out), T> Cache = new();

    public static T Get(int inSize, int outSize, Func<(int In, int Out), T> create)
    {
        if (Cache.Count > MaxCached)
        {
            Cache.Clear();
        }

        return Cache.GetOrAdd((inSize, outSize), create);
    }
}
