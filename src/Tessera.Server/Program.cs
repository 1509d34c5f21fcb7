using Microsoft.Extensions.Options;
using Tessera.Server.Cli;
using Tessera.Server.Hosting;

var cli = CliArgs.Parse(args);
var configArgs = cli.Configuration.ToList();
if (cli.Has("demo")) configArgs.Add("--Tessera:Demo=true");
var command = cli.Words.FirstOrDefault() ?? "serve";
if (command is "help" || cli.Has("help"))
{
    Console.WriteLine(Commands.Usage);
    return 0;
}

WebApplication app;
try
{
    app = TesseraApp.Build(configArgs.ToArray());
}
catch (OptionsValidationException e)
{
    Console.Error.WriteLine("Tessera cannot start; fix the configuration:");
    foreach (var failure in e.Failures) Console.Error.WriteLine("  - " + failure);
    return 2;
}

try
{
    await TesseraApp.InitializeAsync(app);
    if (command == "serve")
    {
        await app.RunAsync();
        return 0;
    }
    return await Commands.RunAsync(cli, app.Services, CancellationToken.None);
}
catch (CliException e)
{
    Console.Error.WriteLine(e.Message);
    return 1;
}
finally
{
    await app.DisposeAsync();
}

/// <summary>Entry point type, for tests that host the server in-process.</summary>
public partial class Program;
