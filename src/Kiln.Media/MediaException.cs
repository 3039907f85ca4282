namespace Kiln.Media;

/// <summary>
/// A media operation failed in a way the caller should report, not retry blindly. <see cref="Code"/> is a
/// stable, dotted error code (for example <c>image.too_large</c>, <c>media.corrupt</c>) that reaches API clients.
/// </summary>
public sealed class MediaException : Exception
{
    public MediaException(string code, string message, bool retryable = false, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
        Retryable = retryable;
    }

    public MediaException()
        : this("media.error", "Media operation failed.")
    {
    }

    public MediaException(string message)
        : this("media.error", message)
    {
    }

    public MediaException(string message, Exception inner)
        : this("media.error", message, false, inner)
    {
    }

    public string Code { get; }

    /// <summary>True when running the same operation again may succeed (a transient tool failure).</summary>
    public bool Retryable { get; }
}
