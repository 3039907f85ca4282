using System.Text;

namespace Kiln.Media.FFmpeg;

/// <summary>
/// The last few lines of a tool's stderr, kept in a fixed ring so a chatty or runaway process cannot grow
/// memory: at most <c>capacity</c> lines of at most <c>maxLineLength</c> characters each.
/// </summary>
internal sealed class StderrTail
{
    private readonly string[] _lines;
    private readonly int _maxLineLength;
    private readonly StringBuilder _current = new();
    private readonly Lock _gate = new();
    private int _next;
    private int _count;

    public StderrTail(int capacity = 20, int maxLineLength = 512)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
        _lines = new string[capacity];
        _maxLineLength = maxLineLength;
    }

    /// <summary>Appends raw text; <c>\r</c> and <c>\n</c> both end a line (ffmpeg redraws status lines with <c>\r</c>).</summary>
    public void Append(ReadOnlySpan<char> text)
    {
        lock (_gate)
        {
            foreach (var c in text)
            {
                if (c is '\n' or '\r')
                {
                    EndLine();
                }
                else if (_current.Length < _maxLineLength)
                {
                    _current.Append(c);
                }
            }
        }
    }

    /// <summary>The retained lines, oldest first, including an unterminated last line.</summary>
    public IReadOnlyList<string> Lines()
    {
        lock (_gate)
        {
            var result = new List<string>(_count + 1);
            var start = (_next - _count + _lines.Length) % _lines.Length;
            for (var i = 0; i < _count; i++)
            {
                result.Add(_lines[(start + i) % _lines.Length]);
            }

            if (_current.Length > 0)
            {
                result.Add(_current.ToString());
                if (result.Count > _lines.Length)
                {
                    result.RemoveAt(0);
                }
            }

            return result;
        }
    }

    public override string ToString() => string.Join('\n', Lines());

    private void EndLine()
    {
        if (_current.Length == 0)
        {
            return;
        }

        _lines[_next] = _current.ToString();
        _next = (_next + 1) % _lines.Length;
        _count = Math.Min(_count + 1, _lines.Length);
        _current.Clear();
    }
}
