using System.CommandLine;
using Kiln.Hosting;
using Kiln.Security;

// kiln serve | migrate | keys …  — each command lives with its feature; this file only assembles them.
var root = new RootCommand("Kiln: a self-hosted media processing server.")
{
    ServeCommand.Create(),
    MigrateCommand.Create(),
    KeysCommand.Create(),
};

return await root.Parse(args).InvokeAsync();
