using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Passwords;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;
using Tessera.Core.Users;
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
        tessera prune                                    run the clean-up job once
        Configuration: appsettings.json / tessera.json, TESSERA__… environment variables, or --Tessera:Key=value.
        """;

    public static async Task<int> RunAsync(CliArgs cli, IServiceProvider sp, CancellationToken ct)
    {
        var store = sp.GetRequiredService<ITesseraStore>();
        var publisher = sp.GetRequiredService<IRevocationPublisher>();
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
                if (await store.Clients.FindAsync(id, ct) is not null) throw new CliException($"Client '{id}' exists; remove it first.");
                var isPublic = cli.Has("public");
                var grants = cli.All("grant").ToList();
                if (grants.Count == 0) grants = isPublic ? [GrantTypes.AuthorizationCode, GrantTypes.RefreshToken] : [GrantTypes.ClientCredentials];
                if (grants.Any(g => !GrantTypes.Supported.Contains(g))) throw new CliException($"Grants must be among: {string.Join(", ", GrantTypes.Supported)}.");
                if (isPublic && grants.Contains(GrantTypes.ClientCredentials)) throw new CliException("A public client cannot use client_credentials.");
                foreach (var uri in cli.All("redirect-uri"))
                    if (!Uri.TryCreate(uri, UriKind.Absolute, out var u) || u.Fragment.Length > 0) throw new CliException($"Redirect URI '{uri}' must be absolute without a fragment.");
                if (grants.Contains(GrantTypes.AuthorizationCode) && !cli.All("redirect-uri").Any()) throw new CliException("authorization_code needs at least one --redirect-uri.");
                if (!Scopes.TryParse(cli.Get("scope"), out var scopes)) throw new CliException("Malformed --scope.");
                string? secret = isPublic ? null : Handles.NewClientSecret();
                TimeSpan? atl = cli.Get("access-token-lifetime") is { } l ? TimeSpan.TryParse(l, System.Globalization.CultureInfo.InvariantCulture, out var ts) && ts > TimeSpan.Zero ? ts : throw new CliException("Bad --access-token-lifetime.") : null;
                await store.Clients.SaveAsync(new Client
                {
                    Id = id,
                    DisplayName = cli.Get("name") ?? id,
                    SecretHash = secret is null ? null : Handles.Hash(secret),
                    RedirectUris = cli.All("redirect-uri").ToList(),
                    PostLogoutRedirectUris = cli.All("post-logout-uri").ToList(),
                    GrantTypes = grants,
                    Scopes = scopes,
                    Resources = cli.All("resource").ToList(),
                    FirstParty = cli.Has("first-party"),
                    Native = cli.Has("native"),
                    AccessTokenLifetime = atl,
                    Refresh = new RefreshPolicy { Rotate = isPublic || !cli.Has("no-rotation") },
                }, ct);
                await Audit(store, AuditTypes.ClientChanged, null, id, "client created from the command line", ct);
                Console.WriteLine($"Client '{id}' created ({(isPublic ? "public" : "confidential")}).");
                if (secret is not null) Console.WriteLine($"Secret (shown once, stored only as a hash): {secret}");
                return 0;
            }
            case ("clients", "rotate-secret"):
            {
                var c = await store.Clients.FindAsync(Arg(2, "client id"), ct) ?? throw new CliException("No such client.");
                if (c.IsPublic) throw new CliException("Public clients have no secret.");
                var secret = Handles.NewClientSecret();
                await store.Clients.SaveAsync(c with { SecretHash = Handles.Hash(secret) }, ct);
                await Audit(store, AuditTypes.ClientChanged, null, c.Id, "secret rotated", ct);
                Console.WriteLine($"New secret (shown once): {secret}");
                return 0;
            }
            case ("clients", "remove"):
            {
                var id = Arg(2, "client id");
                var n = await store.Sessions.RevokeByClientAsync(id, time.GetUtcNow(), RevocationReasons.AdminRevoked, ct);
                if (!await store.Clients.DeleteAsync(id, ct)) throw new CliException($"No client '{id}'.");
                await Audit(store, AuditTypes.ClientChanged, null, id, "client removed; sessions revoked", ct);
                Console.WriteLine($"Client '{id}' removed; {n} sessions revoked.");
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
                if (password.Length < 8) throw new CliException("Passwords need at least 8 characters.");
                IReadOnlyList<string>? allowed = null;
                if (cli.Get("scopes") is { } sc) allowed = Scopes.TryParse(sc, out var parsed) ? parsed : throw new CliException("Malformed --scopes.");
                var user = new User
                {
                    Id = Handles.NewId(), Username = name, Name = cli.Get("name"), Email = cli.Get("email"),
                    PasswordHash = sp.GetRequiredService<PasswordHasher>().Hash(password), AllowedScopes = allowed, CreatedAt = time.GetUtcNow(),
                };
                if (!await store.Users.CreateAsync(user, ct)) throw new CliException($"The username '{name}' is taken.");
                await Audit(store, AuditTypes.UserChanged, user.Id, null, "user created from the command line", ct);
                Console.WriteLine($"User '{name}' created (id {user.Id}).");
                return 0;
            }
            case ("users", "disable" or "enable" or "unlock"):
            {
                var u = await FindUser(Arg(2, "username"));
                var now = time.GetUtcNow();
                var changed = w[1] switch
                {
                    // Disabling also voids every session, so resource servers drop its access tokens through the feed.
                    "disable" => u with { Disabled = true, RevokedBefore = now },
                    "enable" => u with { Disabled = false },
                    _ => u with { LockedUntil = null },
                };
                await store.Users.SaveAsync(changed, ct);
                if (w[1] == "disable")
                {
                    await store.Sessions.RevokeByUserAsync(u.Id, now, RevocationReasons.UserDisabled, ct);
                    await publisher.UserRevokedBeforeAsync(u.Id, now, RevocationReasons.UserDisabled, ct);
                }
                await Audit(store, AuditTypes.UserChanged, u.Id, null, "user " + w[1] + "d", ct);
                Console.WriteLine($"User '{u.Username}' {w[1]}d. Their next refresh sees it.");
                return 0;
            }
            case ("users", "set-scopes"):
            {
                var u = await FindUser(Arg(2, "username"));
                IReadOnlyList<string>? allowed = null;
                if (!cli.Has("all")) allowed = Scopes.TryParse(Arg(3, "scopes"), out var parsed) ? parsed : throw new CliException("Malformed scopes.");
                await store.Users.SaveAsync(u with { AllowedScopes = allowed }, ct);
                await Audit(store, AuditTypes.UserChanged, u.Id, null, "permissions changed", ct);
                Console.WriteLine($"User '{u.Username}' may now have: {(allowed is null ? "any scope their clients may ask for" : string.Join(' ', allowed))}.");
                return 0;
            }
            case ("users", "revoke-sessions"):
            {
                var u = await FindUser(Arg(2, "username"));
                var now = time.GetUtcNow();
                await store.Users.SaveAsync(u with { RevokedBefore = now }, ct);
                var n = await store.Sessions.RevokeByUserAsync(u.Id, now, RevocationReasons.AdminRevoked, ct);
                await publisher.UserRevokedBeforeAsync(u.Id, now, RevocationReasons.AdminRevoked, ct);
                await Audit(store, AuditTypes.SessionRevoked, u.Id, null, $"all sessions revoked by an operator ({n})", ct);
                Console.WriteLine($"{n} sessions of '{u.Username}' revoked; anything older than now is void.");
                return 0;
            }
            case ("users", "remove"):
            {
                var u = await FindUser(Arg(2, "username"));
                await store.Sessions.RevokeByUserAsync(u.Id, time.GetUtcNow(), RevocationReasons.AdminRevoked, ct);
                await store.Users.DeleteAsync(u.Id, ct);
                await Audit(store, AuditTypes.UserChanged, u.Id, null, "user removed", ct);
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
                if (await store.Sessions.RevokeAsync(sid, time.GetUtcNow(), RevocationReasons.AdminRevoked, ct))
                {
                    await Audit(store, AuditTypes.SessionRevoked, s.UserId, s.ClientId, "revoked by an operator", ct, sid);
                    await publisher.SessionRevokedAsync(s, RevocationReasons.AdminRevoked, time.GetUtcNow(), ct);
                }
                Console.WriteLine($"Session {sid} revoked.");
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

    private static Task Audit(ITesseraStore store, string type, string? userId, string? clientId, string reason, CancellationToken ct, string? sessionId = null) =>
        store.Audit.AppendAsync(new AuditEvent { At = DateTimeOffset.UtcNow, Type = type, UserId = userId, ClientId = clientId, SessionId = sessionId, Reason = reason + " (cli)" }, ct);
}

public sealed class CliException(string message) : Exception(message);
