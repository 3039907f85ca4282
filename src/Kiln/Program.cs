using System.CommandLine;
using Kiln.Hosting;
using Kiln.Operations;
using Kiln.Security;
using Kiln.Workers;

// kiln serve | migrate | keys | worker | workers | health | cleanup | backup | restore …  — each command lives with its feature; this file only assembles them.
var root = new RootCommand("Kiln: a self-hosted media processing server.")
{
    ServeCommand.Create(),
    MigrateCommand.Create(),
    KeysCommand.Create(),
    WorkerCommand.Create(),
    WorkerCommand.CreateAdmin(),
    OperationsCommands.Health(),
    OperationsCommands.Cleanup(),
    Backup.BackupCommand(),
    Backup.RestoreCommand(),
};

return await root.Parse(args).InvokeAsync();
