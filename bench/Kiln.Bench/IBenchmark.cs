namespace Kiln.Bench;

/// <summary>One benchmark, run as <c>dotnet run --project bench/Kiln.Bench -c Release -- NAME [args]</c>.</summary>
internal interface IBenchmark
{
    string Name { get; }

    string Description { get; }

    Task<int> RunAsync(string[] args, CancellationToken cancellationToken);
}
