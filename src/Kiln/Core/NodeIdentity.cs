namespace Kiln.Core;

/// <summary>This process's name among the nodes sharing the database: lease owner prefix and log field.</summary>
internal sealed class NodeIdentity(string name)
{
    public string Name { get; } = name;
}
