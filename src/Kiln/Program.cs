using System.CommandLine;
using Kiln.Hosting;
using Kiln.Operations;
using Kiln.Security;
using Kiln.Workers;

// kiln serve | migrate | keys | worker | workers | health | cleanup | backup | restore …  — each command lives with
// its feature; this file only assembles them and hands each the composition root, so no feature depends on it.
var kiln = KilnComposition.Instance;
var root = new RootCommand("Kiln: a self-hosted media processing server.")
{
    ServeCommand.Create(),
    MigrateCommand.Create(),
    KeysCommand.Create(kiln),
    WorkerCommand.Create(kiln),
    WorkerCommand.CreateAdmin(kiln),
    OperationsCommands.Health(kiln),
    OperationsCommands.Cleanup(kiln),
    Backup.BackupCommand(kiln),
    Backup.RestoreCommand(kiln),
};

return await root.Parse(args).InvokeAsync();
