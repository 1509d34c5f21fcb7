using System.Text.RegularExpressions;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// The temporary folder and the child processes of one end-to-end test: the tessera CLI run against it, the servers
/// started in it, their output for failure messages. Disposing stops every process and deletes the folder.
/// </summary>
public sealed partial class ProcessWorkspace(string prefix) : IAsyncDisposable
{
    private readonly List<ChildProcess> _processes = [];

    public string Work { get; } = Directory.CreateTempSubdirectory(prefix).FullName;

    /// <summary>Tessera's own arguments (URLs, data folder, …), given to the CLI and to <c>serve</c> alike.</summary>
    public string[] TesseraArgs { get; set; } = [];

    public Task<string> CliAsync(params string[] args) =>
        ChildProcess.RunAsync(Work, BuildOutput.TesseraDll, [.. args, .. TesseraArgs], TimeSpan.FromSeconds(60));

    public ChildProcess Start(string name, string dll, string[] args)
    {
        var p = ChildProcess.Start(name, Work, dll, args);
        _processes.Add(p);
        return p;
    }

    /// <summary>Every process's output so far, for an assertion message.</summary>
    public string Logs => string.Join("\n\n", _processes.Select(p => $"==== {p.Name} ====\n{p.Output}"));

    /// <summary>The secret printed by <c>tessera clients add</c> or <c>clients rotate-secret</c>.</summary>
    public static string SecretIn(string cliOutput) =>
        SecretLine().Match(cliOutput) is { Success: true } m ? m.Groups[1].Value : throw new InvalidOperationException("No client secret in the CLI's output:\n" + cliOutput);

    [GeneratedRegex(@"(?:Secret \(shown once, stored only as a hash\)|New secret \(shown once\)): (\S+)")]
    private static partial Regex SecretLine();

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        try
        {
            Directory.Delete(Work, recursive: true);
        }
        catch (IOException)
        {
            // a process may hold a file for a moment; the directory is in the temp folder
        }
    }
}
