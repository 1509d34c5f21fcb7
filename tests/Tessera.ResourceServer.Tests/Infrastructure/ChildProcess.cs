using System.Collections.Concurrent;
using System.Diagnostics;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>A `dotnet some.dll …` process on loopback, its recent output kept for failure messages, killed (with its tree) on dispose.</summary>
public sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly ConcurrentQueue<string> _output = new();

    private ChildProcess(string name, Process process)
    {
        Name = name;
        _process = process;
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string Name { get; }

    public string Output => string.Join('\n', _output);

    public static ChildProcess Start(string name, string workingDirectory, string dll, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add(dll);
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        info.Environment["DOTNET_ENVIRONMENT"] = "Production";
        return new ChildProcess(name, Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name}."));
    }

    /// <summary>Runs a command to completion (Tessera's command line) and returns its output.</summary>
    public static async Task<string> RunAsync(string workingDirectory, string dll, IEnumerable<string> args, TimeSpan timeout)
    {
        await using var p = Start(Path.GetFileName(dll), workingDirectory, dll, args);
        using var cts = new CancellationTokenSource(timeout);
        await p._process.WaitForExitAsync(cts.Token);
        p._process.WaitForExit(); // flush the asynchronous readers
        if (p._process.ExitCode != 0)
            throw new InvalidOperationException($"`dotnet {Path.GetFileName(dll)} {args.FirstOrDefault()} …` exited with {p._process.ExitCode}:\n{p.Output}");
        return p.Output;
    }

    /// <summary>Waits until the URL answers 200, or fails with the process's output.</summary>
    public async Task WaitUntilReadyAsync(string url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < timeout)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before it was ready:\n{Output}");
            try
            {
                using var response = await http.GetAsync(url);
                if (response.IsSuccessStatusCode) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"{Name} did not answer {url} within {timeout.TotalSeconds} s:\n{Output}");
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        _output.Enqueue($"[{DateTime.UtcNow:HH:mm:ss.fff}] {line}");
        while (_output.Count > 1000) _output.TryDequeue(out _);
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or System.ComponentModel.Win32Exception)
        {
            // already gone
        }
        _process.Dispose();
    }
}

/// <summary>Finds the built Tessera server and sample API next to this test assembly's build (same configuration).</summary>
public static class BuildOutput
{
    private static readonly DirectoryInfo AssemblyDirectory = new(AppContext.BaseDirectory);

    /// <summary>tests/Tessera.ResourceServer.Tests/bin/{Configuration}/{tfm}/ → {Configuration}.</summary>
    public static string Configuration => AssemblyDirectory.Parent!.Name;

    public static string TargetFramework => AssemblyDirectory.Name;

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = AssemblyDirectory; dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Tessera.slnx"))) return dir.FullName;
            }
            throw new InvalidOperationException($"Tessera.slnx was not found above {AssemblyDirectory.FullName}.");
        }
    }

    public static string TesseraDll => Dll(Path.Combine("src", "Tessera.Server"), "tessera.dll");

    public static string SampleApiDll => Dll(Path.Combine("samples", "SampleApi"), "SampleApi.dll");

    private static string Dll(string project, string file)
    {
        var path = Path.Combine(RepositoryRoot, project, "bin", Configuration, TargetFramework, file);
        if (!File.Exists(path))
            throw new InvalidOperationException($"{path} is missing. Build the test project: it references {project} with ReferenceOutputAssembly=false, so `dotnet test` builds it.");
        return path;
    }
}
