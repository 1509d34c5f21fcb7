using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Storage;
using Tessera.Server.Grants;

namespace Tessera.Server.Admin;

/// <summary>
/// The admin HTTP API under <c>/admin</c>: JSON, paginated, RFC 9457 problem details for refusals. Callers present a
/// Tessera access token (client_credentials of an admin client) with the <c>tessera.admin</c> scope and the issuer
/// as audience; no separate password store.
/// </summary>
public static class AdminApi
{
    public const string Scope = "tessera.admin";

    public static void Map(WebApplication app)
    {
        var admin = app.MapGroup("/admin").AddEndpointFilter(RequireAdminAsync).WithTags("admin");

        admin.MapGet("/users", async (ITesseraStore store, int? offset, int? limit, CancellationToken ct) =>
            Paginate((await store.Users.ListAsync(ct)).Select(UserView.From), offset, limit));
        admin.MapPost("/users", async (CreateUserRequest body, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            var u = await ops.CreateUserAsync(body.Username ?? "", body.Password ?? "", body.Name, body.Email, body.Scopes, Actor(http), ct);
            return Results.Created($"/admin/users/{u.Id}", UserView.From(u));
        });
        admin.MapGet("/users/{id}", async (string id, ITesseraStore store, CancellationToken ct) =>
            await store.Users.FindByIdAsync(id, ct) is { } u ? Results.Ok(UserView.From(u)) : NotFound("user"));
        admin.MapPatch("/users/{id}", async (string id, UpdateUserRequest body, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            if (await store.Users.FindByIdAsync(id, ct) is not { } u) return NotFound("user");
            var changed = await ops.UpdateUserAsync(u, body.Disabled, body.LockedUntil, body.Unlock == true, body.Password, body.Scopes, body.AllScopes == true, Actor(http), ct);
            return Results.Ok(UserView.From(changed));
        });
        admin.MapPost("/users/{id}/revoke-sessions", async (string id, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
            await store.Users.FindByIdAsync(id, ct) is { } u ? Results.Ok(new { revoked = await ops.RevokeUserSessionsAsync(u, Actor(http), ct) }) : NotFound("user"));
        admin.MapDelete("/users/{id}", async (string id, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            if (await store.Users.FindByIdAsync(id, ct) is not { } u) return NotFound("user");
            await ops.DeleteUserAsync(u, Actor(http), ct);
            return Results.NoContent();
        });

        admin.MapGet("/clients", async (ITesseraStore store, int? offset, int? limit, CancellationToken ct) =>
            Paginate((await store.Clients.ListAsync(ct)).Select(c => ClientView.From(c)), offset, limit));
        admin.MapGet("/clients/{id}", async (string id, ITesseraStore store, CancellationToken ct) =>
            await store.Clients.FindCurrentAsync(id, ct) is { } c ? Results.Ok(ClientView.From(c)) : NotFound("client"));
        admin.MapPost("/clients", async (ClientRequest body, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            var (c, secret) = await ops.SaveClientAsync(body.ToClient(), body.Confidential, isNew: true, Actor(http), ct);
            return Results.Created($"/admin/clients/{c.Id}", ClientView.From(c, secret));
        });
        admin.MapPut("/clients/{id}", async (string id, ClientRequest body, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            if (body.Id != id) throw new AdminException("The id in the body must match the URL.", "id");
            if (await store.Clients.FindCurrentAsync(id, ct) is not { } existing) return NotFound("client");
            // What this request model cannot express is kept, not reset: a private_key_jwt key set (while the client
            // stays confidential; else a secret would be made for it), the logout and DPoP-nonce settings.
            var client = body.ToClient() with
            {
                Jwks = body.Confidential ? existing.Jwks : null,
                LogoutRevokesSession = existing.LogoutRevokesSession,
                RequireDpopNonce = existing.RequireDpopNonce,
            };
            var (c, secret) = await ops.SaveClientAsync(client, body.Confidential, isNew: false, Actor(http), ct);
            return Results.Ok(ClientView.From(c, secret));
        });
        admin.MapPost("/clients/{id}/rotate-secret", async (string id, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
            await store.Clients.FindCurrentAsync(id, ct) is { } c ? Results.Ok(new { secret = await ops.RotateSecretAsync(c, Actor(http), ct) }) : NotFound("client"));
        admin.MapPost("/clients/{id}/revoke-sessions", async (string id, AdminService ops, HttpContext http, CancellationToken ct) =>
            Results.Ok(new { revoked = await ops.RevokeClientSessionsAsync(id, Actor(http), ct) }));
        admin.MapDelete("/clients/{id}", async (string id, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            await ops.DeleteClientAsync(id, Actor(http), ct);
            return Results.NoContent();
        });

        admin.MapGet("/sessions", async (string? userId, string? clientId, int? offset, int? limit, ITesseraStore store, TimeProvider time, CancellationToken ct) =>
        {
            if ((userId is null) == (clientId is null)) throw new AdminException("Give exactly one of userId or clientId.", "userId");
            var sessions = userId is not null ? await store.Sessions.ListByUserAsync(userId, ct) : await store.Sessions.ListByClientAsync(clientId!, ct);
            var now = time.GetUtcNow();
            return Paginate(sessions.Select(s => SessionView.From(s, now)), offset, limit);
        });
        admin.MapDelete("/sessions/{sid}", async (string sid, ITesseraStore store, AdminService ops, HttpContext http, CancellationToken ct) =>
        {
            if (await store.Sessions.FindAsync(sid, ct) is not { } s) return NotFound("session");
            await ops.RevokeSessionAsync(s, Actor(http), ct);
            return Results.NoContent();
        });

        admin.MapGet("/audit", async (string? userId, string? clientId, string? sessionId, string? type, DateTimeOffset? from, DateTimeOffset? to, long? before, int? limit,
            ITesseraStore store, CancellationToken ct) =>
        {
            var n = Math.Clamp(limit ?? 100, 1, 1000);
            var items = await store.Audit.QueryAsync(new AuditQuery { UserId = userId, ClientId = clientId, SessionId = sessionId, Type = type, From = from, To = to, BeforeId = before, Limit = n }, ct);
            return Results.Ok(new AuditPage(items, items.Count == n ? items[^1].Id : null));
        });
    }

    private static IResult Paginate<T>(IEnumerable<T> all, int? offset, int? limit)
    {
        var o = Math.Max(0, offset ?? 0);
        var n = Math.Clamp(limit ?? 100, 1, 1000);
        var page = all.Skip(o).Take(n + 1).ToList();
        return Results.Ok(new Page<T>(page.Take(n).ToList(), page.Count > n ? o + n : null));
    }

    private static IResult NotFound(string what) => Results.Problem(statusCode: 404, title: $"No such {what}.");

    private static string Actor(HttpContext http) => "admin API (" + (http.Items["tessera.admin.client"] as string ?? "?") + ")";

    /// <summary>RFC 6750: 401 without a valid token, 403 with one that lacks the admin scope. Operator mistakes become 4xx problem details.</summary>
    private static async ValueTask<object?> RequireAdminAsync(EndpointFilterInvocationContext context, EndpointFilterDelegate next)
    {
        var http = context.HttpContext;
        var header = http.Request.Headers.Authorization.ToString();
        var validator = http.RequestServices.GetRequiredService<AccessTokenValidator>();
        var issuer = http.RequestServices.GetRequiredService<TesseraOptions>().Issuer!;
        var token = header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? await validator.ValidateActiveAsync(header[7..].Trim(), http.RequestAborted) : null;
        if (token is null || !token.Audiences.Contains(issuer))
        {
            http.Response.Headers.WWWAuthenticate = header.Length == 0 ? "Bearer realm=\"tessera-admin\"" : "Bearer realm=\"tessera-admin\", error=\"invalid_token\"";
            return Results.Problem(statusCode: 401, title: "A valid admin access token is required.");
        }
        if (!token.Scopes.Contains(Scope))
        {
            http.Response.Headers.WWWAuthenticate = $"Bearer realm=\"tessera-admin\", error=\"insufficient_scope\", scope=\"{Scope}\"";
            return Results.Problem(statusCode: 403, title: $"The access token lacks the {Scope} scope.");
        }
        http.Items["tessera.admin.client"] = token.ClientId;
        try
        {
            return await next(context);
        }
        catch (AdminException e)
        {
            var errors = new Dictionary<string, string[]> { [e.Field ?? "request"] = [e.Message] };
            return e.Status == 400 ? Results.ValidationProblem(errors, title: e.Message) : Results.Problem(statusCode: e.Status, title: e.Message);
        }
    }
}
