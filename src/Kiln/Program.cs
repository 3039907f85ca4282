using System.CommandLine;
using Kiln.Hosting;
using Kiln.Security;
using Kiln.Workers;

// kiln serve | migrate | keys | worker | workers …  — each command lives with its feature; this file only assembles them.
var root = new RootCommand("Kiln: a self-hosted media processing server.")
{
    ServeCommand.Create(),
    MigrateCommand.Create(),
    KeysCommand.Create(),
    WorkerCommand.Create(),
    WorkerCommand.CreateAdmin(),
};

return await root.Parse(args).InvokeAsync();
