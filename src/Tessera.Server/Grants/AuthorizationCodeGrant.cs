using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;
using Tessera.Core;
using Tessera.Core.Audit;
using Tessera.Core.Clients;
using Tessera.Core.Protocol;
using Tessera.Core.Sessions;
using Tessera.Core.Storage;
using Tessera.Core.Tokens;

namespace Tessera.Server.Grants;

/// <summary>RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6), read top to bottom.</summary>
public sealed class AuthorizationCodeGrant(ITesseraStore store, TokenResponder responder, TesseraOptions options, IRevocationPublisher publisher, TimeProvider time)
{
    private static readonly OAuthFailure InvalidGrant = new(OAuthErrors.InvalidGrant, "The authorization code is invalid, expired or already used.");

    public async Task<GrantResult> HandleAsync(TokenRequest request, CancellationToken ct)
    {
        var client = request.Client;
        if (!client.AllowsGrant(GrantTypes.AuthorizationCode))
            return GrantResult.Fail(OAuthErrors.UnauthorizedClient, "This client may not use the authorization_code grant.");
        var codeValue = request["code"];
        var redirectUri = request["redirect_uri"];
        var verifier = request["code_verifier"];
        if (codeValue is null)
            return GrantResult.Fail(OAuthErrors.InvalidRequest, "code is required.");
        if (redirectUri is null)
            return GrantResult.Fail(OAuthErrors.InvalidRequest, "redirect_uri is required: it was part of the authorization request.");
        // RFC 7636 §4.1: code_verifier = 43*128unreserved.
        if (verifier is not null && !IsValidVerifier(verifier))
            return GrantResult.Fail(OAuthErrors.InvalidRequest, "code_verifier must be 43 to 128 characters of [A-Z] [a-z] [0-9] - . _ ~.");

        var now = time.GetUtcNow();
        var hash = Handles.Hash(codeValue);
        var code = await store.Codes.FindAsync(hash, ct);
        if (code is null) return GrantResult.Fail(InvalidGrant);
        if (code.RedeemedAt is not null) return await ReplayAsync(code, request, now, ct);

        // Every binding is checked before the code is used up, so a refused attempt (another client, a wrong
        // redirect_uri or verifier) leaves the code to its rightful holder and changes nothing.
        // §4.1.3: "ensure that the authorization code was issued to the authenticated confidential client, or if the
        // client is public, ensure that the code was issued to "client_id" in the request".
        if (code.ClientId != client.Id || now >= code.ExpiresAt)
            return GrantResult.Fail(InvalidGrant);
        // §4.1.3: the redirect_uri must be "identical" to the one in the authorization request.
        if (!string.Equals(code.RedirectUri, redirectUri, StringComparison.Ordinal))
            return GrantResult.Fail(InvalidGrant);
        if (code.CodeChallenge is null)
        {
            // RFC 9700 §2.1.1 / OAuth 2.1 §4.1.3: a verifier for a code issued without a challenge is an injection attempt.
            if (verifier is not null) return GrantResult.Fail(InvalidGrant);
        }
        else
        {
            // RFC 7636 §4.6: BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge.
            if (verifier is null) return GrantResult.Fail(InvalidGrant);
            var computed = Base64UrlEncoder.Encode(SHA256.HashData(Encoding.ASCII.GetBytes(verifier)));
            if (!CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(computed), Encoding.ASCII.GetBytes(code.CodeChallenge)))
                return GrantResult.Fail(InvalidGrant);
        }
        // RFC 9449 §10: a code bound with dpop_jkt is redeemed only with a proof by that key.
        if (code.DpopJkt is not null && code.DpopJkt != request.Dpop?.Thumbprint)
            return GrantResult.Fail(InvalidGrant);

        // One-time use: the redemption is a compare-and-swap, so of two concurrent exchanges exactly one wins.
        var redeemed = await store.Codes.TryRedeemAsync(hash, now, ct);
        if (redeemed is null) return GrantResult.Fail(InvalidGrant);
        if (redeemed.RedeemedAt is not null) return await ReplayAsync(redeemed, request, now, ct);

        var user = await store.Users.FindByIdAsync(code.UserId, ct);
        if (user is null || user.Disabled || user.IsLocked(now))
            return GrantResult.Fail(InvalidGrant);
        // A code issued before "sign out everywhere" (or a password reset) must not start a session after it.
        if (user.RevokedBefore is { } watermark && code.CreatedAt < watermark)
            return GrantResult.Fail(InvalidGrant);

        var issueRefresh = client.AllowsGrant(GrantTypes.RefreshToken)
            && (code.Scopes.Contains(Scopes.OfflineAccess) || client.Refresh.IssueWithoutOfflineAccess);
        var absolute = now + (client.Refresh.AbsoluteLifetime ?? options.RefreshAbsoluteLifetime);
        var idle = issueRefresh ? now + (client.Refresh.IdleLifetime ?? options.RefreshIdleLifetime) : now + (client.AccessTokenLifetime ?? options.AccessTokenLifetime);
        string? refreshToken = null;
        byte[]? familyHash = null;
        if (issueRefresh)
        {
            var family = Handles.NewFamily();
            familyHash = Handles.Hash(family);
            refreshToken = Handles.NewRefreshToken(family);
        }
        var session = new Session
        {
            Id = Handles.NewId(),
            UserId = user.Id,
            ClientId = client.Id,
            Scopes = code.Scopes,
            Resource = code.Resource,
            CreatedAt = now,
            AuthTime = code.AuthTime,
            LastUsedAt = now,
            IdleExpiresAt = idle < absolute ? idle : absolute,
            AbsoluteExpiresAt = absolute,
            UserAgent = request.UserAgent,
            IpAddress = request.IpAddress,
            FamilyHash = familyHash,
            CurrentTokenHash = refreshToken is null ? null : Handles.Hash(refreshToken),
            // RFC 9449 §5: refresh tokens of public clients are bound to the key; confidential clients are already sender-constrained.
            DpopJkt = client.IsPublic ? request.Dpop?.Thumbprint : null,
        };
        await store.Sessions.CreateAsync(session, ct);
        await store.Codes.LinkSessionAsync(hash, session.Id, ct);
        await store.Audit.AppendAsync(TokenResponder.Issued(session, client.Id, request.IpAddress, now, issueRefresh ? "authorization_code with refresh token" : "authorization_code"), ct);

        var scopes = code.Scopes.Where(s => s != Scopes.OfflineAccess || issueRefresh).ToList();
        var response = await responder.ForUserAsync(client, user, session, scopes, refreshToken,
            refreshToken is null ? null : session.IdleExpiresAt - now, code.Nonce, request.Dpop?.Thumbprint, ct, code.Amr);
        return new GrantResult(response, null);
    }

    /// <summary>
    /// RFC 6749 §4.1.2: "If an authorization code is used more than once, the authorization server MUST deny the
    /// request and SHOULD revoke (when possible) all tokens previously issued based on that authorization code."
    /// </summary>
    private async Task<GrantResult> ReplayAsync(AuthorizationCode code, TokenRequest request, DateTimeOffset now, CancellationToken ct)
    {
        if (code.SessionId is not null && await store.Sessions.RevokeAsync(code.SessionId, now, RevocationReasons.CodeReplay, ct))
        {
            await store.Audit.AppendAsync(new AuditEvent
            {
                At = now, Type = AuditTypes.CodeReplayed, UserId = code.UserId, ClientId = code.ClientId, SessionId = code.SessionId,
                IpAddress = request.IpAddress, Reason = "authorization code presented twice; its session was revoked",
            }, ct);
            if (await store.Sessions.FindAsync(code.SessionId, ct) is { } revoked)
                await publisher.SessionRevokedAsync(revoked, RevocationReasons.CodeReplay, now, ct);
        }
        return GrantResult.Fail(InvalidGrant);
    }

    internal static bool IsValidVerifier(string v)
    {
        if (v.Length is < 43 or > 128) return false;
        foreach (var c in v)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' or '_' or '~')) return false;
        return true;
    }
}
