using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.WebUtilities;
using Npgsql;
using Tessera.Tests.Infrastructure;
using Tessera.Tests.Storage;

namespace Tessera.Tests.MultiNode;

/// <summary>The multi-node tests start real server processes; they run one class at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MultiNodeCollection
{
    public const string Name = "Tessera processes on one PostgreSQL";
}

/// <summary>
/// Several Tessera server processes (the built <c>tessera.dll</c>, run with <c>dotnet</c>) on loopback ports, sharing
/// one fresh PostgreSQL database on the server named by <c>TESSERA_TEST_POSTGRES</c> and one master key, as behind a
/// load balancer: every node has the same issuer. The database is set up with the operator's commands (<c>migrate</c>,
/// <c>clients add</c>, <c>users add</c>). Disposing kills every process and drops the database.
/// </summary>
public sealed partial class TesseraCluster : IAsyncDisposable
{
    public const string ClientId = "spa";
    public const string Username = "alice";
    public const string Password = "correct horse battery staple 42";
    public const string Scope = "openid offline_access api.read";
    public const string RedirectUri = OAuthDriver.RedirectUri;

    private readonly PostgresTestDatabase _database;
    private readonly string _workDir;
    private readonly IReadOnlyList<string> _commonArgs;

    public IReadOnlyList<TesseraNode> Nodes { get; }
    public string Issuer { get; }
    public string ConnectionString => _database.ConnectionString;

    /// <summary>How long each step of <see cref="StartAsync"/> took.</summary>
    public string StartupReport { get; private set; } = "";

    private TesseraCluster(PostgresTestDatabase database, string workDir, IReadOnlyList<string> commonArgs, IReadOnlyList<TesseraNode> nodes, string issuer)
    {
        _database = database;
        _workDir = workDir;
        _commonArgs = commonArgs;
        Nodes = nodes;
        Issuer = issuer;
    }

    /// <summary>The server as built next to the test assembly (the test project references Tessera.Server).</summary>
    public static string ServerDll
    {
        get
        {
            var path = Path.Combine(AppContext.BaseDirectory, "tessera.dll");
            if (!File.Exists(path)) throw new FileNotFoundException($"The built server is not next to the tests: {path} is missing (does Tessera.Tests still reference Tessera.Server?).", path);
            return path;
        }
    }

    public static async Task<TesseraCluster> StartAsync(int nodeCount, IEnumerable<string>? extraArgs = null)
    {
        // Fails (never skips) without TESSERA_TEST_POSTGRES.
        var database = await PostgresTestDatabase.CreateAsync();
        var workDir = Directory.CreateTempSubdirectory("tessera-cluster-").FullName;
        var nodes = new List<TesseraNode>();
        TesseraCluster? cluster = null;
        try
        {
            var ports = FreePorts(nodeCount);
            // One issuer for all: behind a load balancer the nodes are one authorization server.
            var issuer = $"http://127.0.0.1:{ports[0]}";
            // Small pools: three nodes must stay well inside the test server's max_connections.
            var connectionString = new NpgsqlConnectionStringBuilder(database.ConnectionString) { MaxPoolSize = 40 }.ConnectionString;
            var common = new List<string>
            {
                "--Tessera:Store=postgres",
                $"--Tessera:PostgresConnectionString={connectionString}",
                $"--Tessera:MasterKey={Convert.ToBase64String(RandomNumberGenerator.GetBytes(32))}",
                $"--Tessera:Issuer={issuer}",
                $"--Tessera:DataDirectory={Path.Combine(workDir, "data")}",
                "--Tessera:RateLimits:Token=0", "--Tessera:RateLimits:Login=0", "--Tessera:RateLimits:Authorize=0", "--Tessera:RateLimits:Other=0",
            };
            if (extraArgs is not null) common.AddRange(extraArgs);
            for (var i = 0; i < nodeCount; i++) nodes.Add(new TesseraNode((char)('A' + i), ports[i], common, workDir));
            cluster = new TesseraCluster(database, workDir, common, nodes, issuer);

            var clock = Stopwatch.StartNew();
            // The operator's set-up: the schema (and the first signing key) once, then the client and the user.
            await cluster.RunCommandAsync(["migrate"]);
            var migrated = clock.Elapsed;
            await Task.WhenAll(
                cluster.RunCommandAsync(["clients", "add", ClientId, "--public", "--first-party", "--redirect-uri", RedirectUri, "--scope", Scope]),
                cluster.RunCommandAsync(["users", "add", Username, "--password-stdin", "--name", "Alice Example"], stdin: Password));
            var seeded = clock.Elapsed;
            await Task.WhenAll(nodes.Select(n => n.StartAsync()));
            cluster.StartupReport = $"set-up: migrate {migrated.TotalSeconds:0.0} s, client and user {(seeded - migrated).TotalSeconds:0.0} s, " +
                $"{nodeCount} nodes up {(clock.Elapsed - seeded).TotalSeconds:0.0} s";
            return cluster;
        }
        catch
        {
            if (cluster is not null) await cluster.DisposeAsync();
            else
            {
                foreach (var n in nodes) n.Dispose();
                await database.DisposeAsync();
            }
            throw;
        }
    }

    /// <summary>Runs <c>tessera &lt;command&gt;</c> against the cluster's database and fails on a non-zero exit.</summary>
    public async Task<string> RunCommandAsync(IReadOnlyList<string> command, string? stdin = null)
    {
        var start = new ProcessStartInfo(TesseraNode.DotnetHostPath())
        {
            WorkingDirectory = _workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(ServerDll);
        foreach (var a in command) start.ArgumentList.Add(a);
        foreach (var a in _commonArgs) start.ArgumentList.Add(a);
        TesseraNode.CleanEnvironment(start);
        using var p = Process.Start(start) ?? throw new InvalidOperationException("could not start dotnet");
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null)
        {
            await p.StandardInput.WriteLineAsync(stdin);
            p.StandardInput.Close();
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"tessera {string.Join(' ', command)} did not finish in 60 s.");
        }
        var (o, e) = (await stdout, await stderr);
        Assert.True(p.ExitCode == 0, $"tessera {string.Join(' ', command)} exited with {p.ExitCode}:\n{o}\n{e}");
        return o;
    }

    public NpgsqlConnection OpenDatabase()
    {
        var c = new NpgsqlConnection(_database.ConnectionString);
        c.Open();
        return c;
    }

    public async Task<long> ScalarAsync(string sql, params (string Name, object Value)[] parameters)
    {
        await using var c = OpenDatabase();
        await using var cmd = new NpgsqlCommand(sql, c);
        foreach (var (name, value) in parameters) cmd.Parameters.AddWithValue(name, value);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync());
    }

    /// <summary>Everything the nodes logged, for failure messages.</summary>
    public string Logs(int lastLines = 60) =>
        string.Join("\n", Nodes.Select(n => $"--- node {n.Name} (port {n.Port}) ---\n{n.Logs(lastLines)}"));

    public async ValueTask DisposeAsync()
    {
        foreach (var n in Nodes) n.Dispose();
        try
        {
            NpgsqlConnection.ClearAllPools();
            await _database.DisposeAsync();
        }
        finally
        {
            try { Directory.Delete(_workDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private static int[] FreePorts(int n)
    {
        // Held open together, so the kernel hands out distinct ports.
        var listeners = Enumerable.Range(0, n).Select(_ => new TcpListener(IPAddress.Loopback, 0)).ToList();
        try
        {
            foreach (var l in listeners) l.Start();
            return listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port).ToArray();
        }
        finally
        {
            foreach (var l in listeners) l.Stop();
        }
    }

    // ---- protocol helpers (what OAuthDriver does, against any node) ------------------------------------------

    /// <summary>Signs in on <paramref name="browser"/>'s node through the login form and returns after the 303.</summary>
    public static async Task SignInAsync(HttpClient browser, HttpClient? postTo = null)
    {
        var page = await browser.GetAsync("login?returnUrl=%2Faccount");
        var html = await page.Content.ReadAsStringAsync();
        Assert.True(page.StatusCode == HttpStatusCode.OK, $"login page: {(int)page.StatusCode} {html}");
        var post = await (postTo ?? browser).PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(html), ["username"] = Username, ["password"] = Password, ["returnUrl"] = "/account",
        }));
        Assert.True(post.StatusCode == HttpStatusCode.SeeOther, $"sign-in: {(int)post.StatusCode} {await post.Content.ReadAsStringAsync()}");
    }

    /// <summary>
    /// The code flow with PKCE through <paramref name="browser"/> (signing in through the form when asked), then the code
    /// exchange on <paramref name="tokenNode"/>: a fresh session. Returns the refresh token.
    /// </summary>
    public static async Task<string> StartSessionAsync(HttpClient browser, HttpClient tokenNode, string clientId = ClientId)
    {
        var (verifier, challenge) = OAuthDriver.NewPkce();
        var response = await browser.GetAsync(OAuthDriver.AuthorizeUrl(clientId, Scope, challenge));
        string? code = null;
        for (var hops = 0; hops < 8 && code is null; hops++)
        {
            if (response.StatusCode is HttpStatusCode.Found or HttpStatusCode.SeeOther)
            {
                var location = response.Headers.Location!.ToString();
                if (location.StartsWith(RedirectUri, StringComparison.Ordinal))
                {
                    var query = QueryHelpers.ParseQuery(new Uri(location).Query);
                    Assert.True(query.ContainsKey("code"), "no code: " + location);
                    code = query["code"].ToString();
                    break;
                }
                response = await browser.GetAsync(location.TrimStart('/'));
                continue;
            }
            var html = await response.Content.ReadAsStringAsync();
            Assert.True(response.StatusCode == HttpStatusCode.OK && html.Contains("name=\"password\"", StringComparison.Ordinal), $"unexpected {(int)response.StatusCode}: {html}");
            response = await browser.PostAsync("login", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["__RequestVerificationToken"] = OAuthDriver.AntiforgeryToken(html), ["username"] = Username, ["password"] = Password,
                ["returnUrl"] = WebUtility.HtmlDecode(ReturnUrlField().Match(html).Groups[1].Value),
            }));
        }
        Assert.NotNull(code);
        var answer = await TokenAsync(tokenNode, new Dictionary<string, string>
        {
            ["grant_type"] = "authorization_code", ["code"] = code, ["redirect_uri"] = RedirectUri, ["code_verifier"] = verifier, ["client_id"] = clientId,
        });
        Assert.True(answer.Status == HttpStatusCode.OK && answer.RefreshToken is not null, $"code exchange: {(int)answer.Status} {answer.Body}");
        return answer.RefreshToken;
    }

    public static Task<TokenAnswer> RefreshAsync(HttpClient node, string refreshToken, string clientId = ClientId, CancellationToken ct = default) =>
        TokenAsync(node, new Dictionary<string, string> { ["grant_type"] = "refresh_token", ["refresh_token"] = refreshToken, ["client_id"] = clientId }, ct);

    public static async Task<TokenAnswer> TokenAsync(HttpClient node, Dictionary<string, string> form, CancellationToken ct = default)
    {
        using var content = new FormUrlEncodedContent(form);
        var response = await node.PostAsync("connect/token", content, ct);
        var text = await response.Content.ReadAsStringAsync(ct);
        JsonElement body = default;
        if (text.Length > 0)
        {
            try { body = JsonDocument.Parse(text).RootElement.Clone(); }
            catch (JsonException) { body = JsonDocument.Parse(JsonSerializer.Serialize(text)).RootElement.Clone(); }
        }
        return new TokenAnswer(response.StatusCode, body, response);
    }

    [GeneratedRegex("name=\"returnUrl\" value=\"([^\"]*)\"")]
    private static partial Regex ReturnUrlField();
}

/// <summary>One server process on a fixed loopback port; it can be killed and started again on the same port.</summary>
public sealed class TesseraNode : IDisposable
{
    private readonly IReadOnlyList<string> _args;
    private readonly string _workDir;
    private readonly ConcurrentQueue<string> _log = new();
    private Process? _process;

    public TesseraNode(char name, int port, IReadOnlyList<string> commonArgs, string workDir)
    {
        Name = name.ToString();
        Port = port;
        Url = $"http://127.0.0.1:{port}";
        _args = commonArgs;
        _workDir = workDir;
        Http = NewClient();
    }

    public string Name { get; }
    public int Port { get; }
    public string Url { get; }

    /// <summary>A client for this node, no cookies, no redirects; shared by the test's concurrent requests.</summary>
    public HttpClient Http { get; }

    public bool IsRunning => _process is { HasExited: false };

    public HttpClient NewClient(CookieContainer? cookies = null) => new(new SocketsHttpHandler
    {
        AllowAutoRedirect = false,
        UseCookies = cookies is not null,
        CookieContainer = cookies ?? new CookieContainer(),
        MaxConnectionsPerServer = 512,
        ConnectTimeout = TimeSpan.FromSeconds(5),
    })
    {
        BaseAddress = new Uri(Url + "/"),
        Timeout = TimeSpan.FromSeconds(20),
    };

    internal static void CleanEnvironment(ProcessStartInfo start)
    {
        // Only the command line configures the node: nothing from the environment the tests run in.
        foreach (var key in start.Environment.Keys.ToList())
            if (key.StartsWith("Tessera__", StringComparison.OrdinalIgnoreCase) || key.StartsWith("ASPNETCORE_", StringComparison.OrdinalIgnoreCase))
                start.Environment.Remove(key);
        start.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        start.Environment["DOTNET_NOLOGO"] = "1";
    }

    /// <summary>Starts the process and waits until it answers /healthz.</summary>
    public async Task StartAsync()
    {
        if (IsRunning) throw new InvalidOperationException($"node {Name} is running");
        _process?.Dispose();
        var start = new ProcessStartInfo(DotnetHostPath())
        {
            WorkingDirectory = _workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(TesseraCluster.ServerDll);
        start.ArgumentList.Add("serve");
        foreach (var a in _args) start.ArgumentList.Add(a);
        start.ArgumentList.Add($"--urls={Url}");
        CleanEnvironment(start);
        var p = new Process { StartInfo = start, EnableRaisingEvents = true };
        p.OutputDataReceived += (_, e) => Record(e.Data);
        p.ErrorDataReceived += (_, e) => Record(e.Data);
        if (!p.Start()) throw new InvalidOperationException($"node {Name} did not start");
        _process = p;
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();

        var deadline = Stopwatch.StartNew();
        using var probe = NewClient();
        probe.Timeout = TimeSpan.FromSeconds(2);
        while (true)
        {
            if (p.HasExited) throw new InvalidOperationException($"node {Name} exited with {p.ExitCode} while starting:\n{Logs()}");
            try
            {
                using var r = await probe.GetAsync("healthz");
                if (r.IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            if (deadline.Elapsed > TimeSpan.FromSeconds(45))
                throw new TimeoutException($"node {Name} did not answer /healthz within 45 s:\n{Logs()}");
            await Task.Delay(100);
        }
    }

    /// <summary>SIGKILL: no shutdown hooks, no flushing; in-flight requests and open transactions just stop.</summary>
    public void Kill()
    {
        var p = _process ?? throw new InvalidOperationException($"node {Name} was never started");
        p.Kill(entireProcessTree: true);
        if (!p.WaitForExit(10_000)) throw new TimeoutException($"node {Name} did not die");
        Record($"[test] node {Name} killed (SIGKILL)");
    }

    public string Logs(int lastLines = 200) => string.Join("\n", _log.TakeLast(lastLines));

    private void Record(string? line)
    {
        if (line is null) return;
        _log.Enqueue(line);
        while (_log.Count > 2000) _log.TryDequeue(out _);
    }

    /// <summary>The dotnet host running the tests, so the servers run on the same runtime.</summary>
    internal static string DotnetHostPath()
    {
        if (Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host && File.Exists(host)) return host;
        if (Environment.ProcessPath is { } self && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
        return "dotnet";
    }

    public void Dispose()
    {
        if (_process is { } p)
        {
            try
            {
                if (!p.HasExited)
                {
                    p.Kill(entireProcessTree: true);
                    p.WaitForExit(10_000);
                }
            }
            catch (InvalidOperationException) { /* already gone */ }
            p.Dispose();
            _process = null;
        }
        Http.Dispose();
    }
}
