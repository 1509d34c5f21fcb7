using System.Diagnostics;
using System.Text;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>
/// The independent client of the interop test: Node.js scripts in <c>EndToEnd/oauth4webapi</c>, with the npm packages
/// pinned by its committed package-lock.json and installed by <c>npm ci</c> from the test itself, so a fresh machine
/// needs only node and npm (test.sh installs Debian's). Without them the test fails with what to do; it never skips.
/// </summary>
public static class NodeClient
{
    private static readonly SemaphoreSlim InstallGate = new(1, 1);
    private static bool _installed;

    public static string Directory => Path.Combine(BuildOutput.RepositoryRoot, "tests", "Tessera.ResourceServer.Tests", "EndToEnd", "oauth4webapi");

    public static string Node => Find("TESSERA_TEST_NODE", "node");

    public static string Npm => Find("TESSERA_TEST_NPM", "npm");

    /// <summary>Fails at once, loudly, when node or npm is missing.</summary>
    public static void EnsureAvailable()
    {
        _ = Node;
        _ = Npm;
    }

    /// <summary><c>npm ci</c>: exactly the locked packages, into node_modules beside the scripts (once per test run).</summary>
    public static async Task InstallAsync()
    {
        await InstallGate.WaitAsync();
        try
        {
            if (_installed) return;
            var (exit, output) = await RunAsync(Npm, ["ci", "--no-audit", "--no-fund", "--loglevel=error"], new Dictionary<string, string>(), TimeSpan.FromMinutes(5));
            if (exit != 0) throw new InvalidOperationException($"`npm ci` in {Directory} failed with exit code {exit}:\n{output}");
            _installed = true;
        }
        finally
        {
            InstallGate.Release();
        }
    }

    /// <summary>Runs <c>node script</c> in the client's folder; its standard output on success, a failure with everything it printed otherwise.</summary>
    public static async Task<string> RunScriptAsync(string script, IReadOnlyDictionary<string, string> environment, TimeSpan timeout)
    {
        var (exit, output) = await RunAsync(Node, [script], environment, timeout, stdoutOnly: true);
        if (exit != 0) throw new InvalidOperationException($"`node {script}` exited with {exit}:\n{output}");
        return output;
    }

    private static async Task<(int Exit, string Output)> RunAsync(string file, IEnumerable<string> args, IReadOnlyDictionary<string, string> environment, TimeSpan timeout, bool stdoutOnly = false)
    {
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = Directory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        foreach (var (name, value) in environment) info.Environment[name] = value;
        using var process = Process.Start(info) ?? throw new InvalidOperationException($"Could not start {file}.");
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await process.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"`{Path.GetFileName(file)} {string.Join(' ', info.ArgumentList)}` did not finish within {timeout.TotalSeconds} s:\n{stdout}{stderr}");
        }
        process.WaitForExit(); // flush the asynchronous readers; nothing writes to the builders after this
        return (process.ExitCode, process.ExitCode == 0 && stdoutOnly ? stdout.ToString() : stdout.ToString() + stderr);
    }

    private static string Find(string variable, string name)
    {
        if (Environment.GetEnvironmentVariable(variable) is { Length: > 0 } configured)
        {
            if (File.Exists(configured)) return configured;
            throw new InvalidOperationException($"{variable} points at {configured}, which does not exist.");
        }
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(dir, name);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException(
            $"`{name}` was not found on PATH. The DPoP interop test drives Tessera with an independent Node.js client (oauth4webapi): " +
            $"install Node.js and npm (Debian: `apt-get install -y nodejs npm`; ./test.sh does it) or point {variable} at the executable. " +
            "This test fails rather than skips without them" + (Environment.GetEnvironmentVariable("CI") is { Length: > 0 } ? " (CI is set)." : "."));
    }
}
