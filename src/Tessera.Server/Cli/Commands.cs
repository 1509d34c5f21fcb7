using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
using Tessera.Server.Admin;
using Tessera.Server.Hosting;
using Tessera.Server.Maintenance;

namespace Tessera.Server.Cli;

/// <summary>The operator's commands: clients, users, sessions, audit, migrate, prune. They work on the configured store directly.</summary>
public static class Commands
{
    public const string Usage = """
        tessera [serve] [--demo]                         run the server (default http://127.0.0.1:5080)
        tessera migrate                                  create or upgrade the schema and exit
        tessera clients list
        tessera clients add <id> [--public] [--redirect-uri URI]... [--post-logout-uri URI]... [--scope "a b"]
                            [--grant authorization_code|refresh_token|client_credentials]... [--resource URI]...
                            [--first-party] [--native] [--name TEXT] [--access-token-lifetime 00:05:00] [--no-rotation]
                            [--backchannel-logout-uri URI] [--require-dpop] [--jwks-file FILE (private_key_jwt)] [--signing-alg ES256|RS256|EdDSA]
        tessera clients rotate-secret <id>
        tessera clients remove <id>
        tessera users list
        tessera users add <username> (--password-stdin | --password P) [--name N] [--email E] [--scopes "a b"]
        tessera users disable|enable|unlock <username>
        tessera users set-scopes <username> "a b" | --all
        tessera users revoke-sessions <username>          every session of the user ends now
        tessera sessions list (--user <username> | --client <id>)
        tessera sessions revoke <sid>
        tessera audit [--user <username>] [--client <id>] [--session <sid>] [--type T] [--since 2026-01-01] [--limit N]
        tessera keys list                                signing keys of every algorithm and their states
        tessera keys rotate [--alg ES256|RS256|EdDSA]    a new key for that algorithm (default ES256) signs from now on
        tessera prune                                    run the clean-up job once
        Configuration: appsettings.json / tessera.json, TESSERA__… environment variables, or --Tessera:Key=value.
        """;

    public static async Task<int> RunAsync(CliArgs cli, IServiceProvider sp, CancellationToken ct)
    {
        try
        {
            return await RunCoreAsync(cli, sp, ct);
        }
        catch (AdminException e)
        {
            throw new CliException(e.Message);
        }
    }

    private static async Task<int> RunCoreAsync(CliArgs cli, IServiceProvider sp, CancellationToken ct)
    {
        var store = sp.GetRequiredService<ITesseraStore>();
        var ops = sp.GetRequiredService<AdminService>();
        var time = TimeProvider.System;
        var w = cli.Words;
        string Arg(int i, string what) => w.Count > i ? w[i] : throw new CliException($"Missing {what}.\n\n{Usage}");
        async Task<User> FindUser(string name) => await store.Users.FindByUsernameAsync(name, ct) ?? throw new CliException($"No user '{name}'.");

        switch (w.ElementAtOrDefault(0), w.ElementAtOrDefault(1))
        {
            case ("migrate", _):
                Console.WriteLine($"Schema at version {store.SchemaVersion}.");
                return 0;
            case ("prune", _):
                Console.WriteLine($"Pruned {await PruningService.PruneOnceAsync(store, sp.GetRequiredService<TesseraOptions>(), time.GetUtcNow(), ct)} rows.");
                return 0;

            case ("clients", "list"):
                foreach (var c in await store.Clients.ListAsync(ct))
                    Console.WriteLine($"{c.Id}\t{(c.IsPublic ? "public" : "confidential")}\tgrants={string.Join(',', c.GrantTypes)}\tscopes={string.Join(' ', c.Scopes)}\tredirects={string.Join(' ', c.RedirectUris)}");
                return 0;
            case ("clients", "add"):
            {
                var id = Arg(2, "client id");
                var isPublic = cli.Has("public");
                var grants = cli.All("grant").ToList();
                if (grants.Count == 0) grants = isPublic ? [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken] : [GrantTypes.ClientCredentials];
                if (!Scopes.TryParse(cli.Get("scope"), out var scopes)) throw new CliException("Malformed --scope.");
                TimeSpan? atl = cli.Get("access-token-lifetime") is { } l ? TimeSpan.TryParse(l, System.Globalization.CultureInfo.InvariantCulture, out var ts) && ts > TimeSpan.Zero ? ts : throw new CliException("Bad --access-token-lifetime.") : null;
                var (client, secret) = await ops.SaveClientAsync(new Client
                {
                    Id = id,
                    DisplayName = cli.Get("name") ?? id,
                    RedirectUris = cli.All("redirect-uri").ToList(),
                    PostLogoutRedirectUris = cli.All("post-logout-uri").ToList(),
                    GrantTypes = grants,
                    Scopes = scopes,
                    Resources = cli.All("resource").ToList(),
                    FirstParty = cli.Has("first-party"),
                    Native = cli.Has("native"),
                    AccessTokenLifetime = atl,
                    BackchannelLogoutUri = cli.Get("backchannel-logout-uri"),
                    RequireDpop = cli.Has("require-dpop"),
                    SigningAlgorithm = cli.Get("signing-alg"),
                    Jwks = cli.Get("jwks-file") is { } jwksFile ? File.ReadAllText(jwksFile) : null,
                    Refresh = new RefreshPolicy { Rotate = !cli.Has("no-rotation") },
                }, confidential: !isPublic, isNew: true, Actor, ct);
                Console.WriteLine($"Client '{client.Id}' created ({(client.IsPublic ? "public" : "confidential")}).");
                if (secret is not null) Console.WriteLine($"Secret (shown once, stored only as a hash): {secret}");
                return 0;
            }
            case ("clients", "rotate-secret"):
            {
                var c = await store.Clients.FindCurrentAsync(Arg(2, "client id"), ct) ?? throw new CliException("No such client.");
                var secret = await ops.RotateSecretAsync(c, Actor, ct);
                await UntilServersSeeClientChangeAsync(store, ct);
                Console.WriteLine($"New secret (shown once): {secret}");
                return 0;
            }
            case ("clients", "remove"):
            {
                var id = Arg(2, "client id");
                await ops.DeleteClientAsync(id, Actor, ct);
                await UntilServersSeeClientChangeAsync(store, ct);
                Console.WriteLine($"Client '{id}' removed; its sessions were revoked.");
                return 0;
            }

            case ("users", "list"):
                foreach (var u in await store.Users.ListAsync(ct))
                    Console.WriteLine($"{u.Username}\t{u.Id}\t{(u.Disabled ? "disabled" : "active")}{(u.IsLocked(time.GetUtcNow()) ? " locked" : "")}\tscopes={(u.AllowedScopes is null ? "*" : string.Join(' ', u.AllowedScopes))}");
                return 0;
            case ("users", "add"):
            {
                var name = Arg(2, "username");
                var password = cli.Has("password-stdin") ? Console.In.ReadLine() : cli.Get("password");
                if (string.IsNullOrEmpty(password)) throw new CliException("Give a password with --password-stdin (preferred) or --password.");
                IReadOnlyList<string>? allowed = null;
                if (cli.Get("scopes") is { } sc) allowed = Scopes.TryParse(sc, out var parsed) ? parsed : throw new CliException("Malformed --scopes.");
                var user = await ops.CreateUserAsync(name, password, cli.Get("name"), cli.Get("email"), allowed, Actor, ct);
                Console.WriteLine($"User '{user.Username}' created (id {user.Id}).");
                return 0;
            }
            case ("users", "disable" or "enable" or "unlock"):
            {
                var u = await FindUser(Arg(2, "username"));
                await ops.UpdateUserAsync(u, w[1] == "unlock" ? null : w[1] == "disable", null, w[1] == "unlock", null, null, false, Actor, ct);
                Console.WriteLine($"User '{u.Username}' {w[1]}d.{(w[1] == "disable" ? " Their sessions were revoked." : "")}");
                return 0;
            }
            case ("users", "set-scopes"):
            {
                var u = await FindUser(Arg(2, "username"));
                IReadOnlyList<string>? allowed = null;
                if (!cli.Has("all")) allowed = Scopes.TryParse(Arg(3, "scopes"), out var parsed) ? parsed : throw new CliException("Malformed scopes.");
                await ops.UpdateUserAsync(u, null, null, false, null, allowed, allowed is null, Actor, ct);
                Console.WriteLine($"User '{u.Username}' may now have: {(allowed is null ? "any scope their clients may ask for" : string.Join(' ', allowed))}. The next refresh applies it.");
                return 0;
            }
            case ("users", "revoke-sessions"):
            {
                var u = await FindUser(Arg(2, "username"));
                var n = await ops.RevokeUserSessionsAsync(u, Actor, ct);
                Console.WriteLine($"{n} sessions of '{u.Username}' revoked; anything older than now is void.");
                return 0;
            }
            case ("users", "remove"):
            {
                var u = await FindUser(Arg(2, "username"));
                await ops.DeleteUserAsync(u, Actor, ct);
                Console.WriteLine($"User '{u.Username}' removed.");
                return 0;
            }

            case ("sessions", "list"):
            {
                IReadOnlyList<Session> sessions = cli.Get("user") is { } un
                    ? await store.Sessions.ListByUserAsync((await FindUser(un)).Id, ct)
                    : cli.Get("client") is { } cid ? await store.Sessions.ListByClientAsync(cid, ct) : throw new CliException("Give --user or --client.");
                var now = time.GetUtcNow();
                foreach (var s in sessions)
                    Console.WriteLine($"{s.Id}\t{s.ClientId}\t{(s.IsActive(now) ? "active" : s.RevokedAt is not null ? "revoked:" + s.RevokedReason : "expired")}\tstarted={s.CreatedAt:u}\tlast={s.LastUsedAt:u}\tip={s.IpAddress}");
                return 0;
            }
            case ("sessions", "revoke"):
            {
                var sid = Arg(2, "session id");
                var s = await store.Sessions.FindAsync(sid, ct) ?? throw new CliException("No such session.");
                await ops.RevokeSessionAsync(s, Actor, ct);
                Console.WriteLine($"Session {sid} revoked.");
                return 0;
            }

            case ("keys", "list"):
            {
                var now = time.GetUtcNow();
                var ring = sp.GetRequiredService<Tessera.Core.Keys.KeyRing>();
                var records = await store.Keys.ListAsync(ct);
                // Each algorithm has its own current key; only algorithms that already have keys are asked (asking creates one).
                var current = new HashSet<string>();
                foreach (var alg in records.Select(k => k.Algorithm).Distinct())
                    current.Add((await ring.GetCurrentAsync(alg, ct)).Kid);
                var published = (await ring.GetPublishedAsync(ct)).Select(k => k.Kid).ToHashSet();
                foreach (var k in records)
                    Console.WriteLine($"{k.Kid}\t{k.Algorithm}\tactivates={k.ActivatesAt:u}\t{(current.Contains(k.Kid) ? "current" : k.ActivatesAt > now ? "announced" : published.Contains(k.Kid) ? "retiring (still published)" : "retired")}");
                return 0;
            }
            case ("keys", "rotate"):
            {
                var alg = cli.Get("alg") ?? Microsoft.IdentityModel.Tokens.SecurityAlgorithms.EcdsaSha256;
                if (!Tessera.Core.Keys.KeyRing.Algorithms.Contains(alg))
                    throw new CliException($"--alg must be one of {string.Join(", ", Tessera.Core.Keys.KeyRing.Algorithms)}.");
                var k = await sp.GetRequiredService<Tessera.Core.Keys.KeyRing>().RotateNowAsync(ct, alg);
                Console.WriteLine($"{alg} key {k.Kid} signs from now on; the previous {alg} key stays published for Tessera:SigningKeyRetention.");
                return 0;
            }
            case ("audit", _):
            {
                string? userId = cli.Get("user") is { } un ? (await FindUser(un)).Id : null;
                var events = await store.Audit.QueryAsync(new AuditQuery
                {
                    UserId = userId, ClientId = cli.Get("client"), SessionId = cli.Get("session"), Type = cli.Get("type"),
                    From = cli.Get("since") is { } since ? DateTimeOffset.Parse(since, System.Globalization.CultureInfo.InvariantCulture) : null,
                    Limit = int.TryParse(cli.Get("limit"), out var lim) ? lim : 100,
                }, ct);
                foreach (var e in events)
                    Console.WriteLine($"{e.At:yyyy-MM-dd HH:mm:ss}Z\t{e.Type}\tuser={e.UserId}\tclient={e.ClientId}\tsession={e.SessionId}\tip={e.IpAddress}\t{e.Reason}");
                return 0;
            }
        }
        throw new CliException(Usage);
    }

    private const string Actor = "the command line";

    /// <summary>
    /// A server running on the same SQLite file sees a client change made here within the store's change-visibility
    /// delay (its client cache); waiting that long before returning means that once the command is done, the old
    /// secret or the removed client works nowhere. No wait on PostgreSQL, where every node reads clients afresh.
    /// </summary>
    private static Task UntilServersSeeClientChangeAsync(ITesseraStore store, CancellationToken ct) =>
        store.Clients.ChangeVisibilityDelay is { } delay && delay > TimeSpan.Zero ? Task.Delay(delay, ct) : Task.CompletedTask;
}

public sealed class CliException(string message) : Exception(message);
