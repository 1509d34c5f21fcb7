using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>A `dotnet some.dll …` process on loopback, its output kept for failure messages, killed (with its tree) on dispose.</summary>
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

    public bool HasExited => _process.HasExited;

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
        return new ChildProcess(name, Process.Start(info) ?? throw new InvalidOperationException($"Could not start {name}."));
    }

    /// <summary>Runs a command to completion (Tessera's CLI) and returns its standard output.</summary>
    public static async Task<string> RunAsync(string workingDirectory, string dll, IEnumerable<string> args, TimeSpan timeout)
    {
        await using var p = Start(Path.GetFileName(dll), workingDirectory, dll, args);
        using var cts = new CancellationTokenSource(timeout);
        await p._process.WaitForExitAsync(cts.Token);
        p._process.WaitForExit(); // flush the asynchronous readers
        if (p._process.ExitCode != 0)
            throw new InvalidOperationException($"`dotnet {Path.GetFileName(dll)} {string.Join(' ', args)}` exited with {p._process.ExitCode}:\n{p.Output}");
        return p.Output;
    }

    /// <summary>Waits until the URL answers (any status), or fails with the process's output.</summary>
    public async Task WaitUntilReadyAsync(string url, TimeSpan timeout)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var until = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < until)
        {
            if (_process.HasExited) throw new InvalidOperationException($"{Name} exited with {_process.ExitCode} before it was ready:\n{Output}");
            try
            {
                using var _ = await http.GetAsync(url);
                return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
            {
                await Task.Delay(100);
            }
        }
        throw new TimeoutException($"{Name} did not answer {url} within {timeout.TotalSeconds} s:\n{Output}");
    }

    public static int FreePort()
    {
        using var socket = new TcpListener(IPAddress.Loopback, 0);
        socket.Start();
        return ((IPEndPoint)socket.LocalEndpoint).Port;
    }

    private void Keep(string? line)
    {
        if (line is null) return;
        _output.Enqueue(line);
        while (_output.Count > 400) _output.TryDequeue(out _);
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
        catch (Exception e) when (e is InvalidOperationException or TimeoutException)
        {
            // already gone
        }
        _process.Dispose();
    }
}
