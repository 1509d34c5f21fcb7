using System.Text;
using Microsoft.AspNetCore.Authentication.JwtBearer;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace Tessera.ResourceServer;

/// <summary>
/// The JwtBearer events of a Tessera scheme: where the token is read from, and what a refusal looks like. RFC 6750 §3
/// challenges for <c>Bearer</c>, RFC 9449 §7.1 challenges for <c>DPoP</c>, and both when both are accepted (§7.2).
/// </summary>
internal static class TesseraBearerEvents
{
    public static JwtBearerEvents Create(TesseraAccessTokenOptions options)
    {
        var dpop = options.Dpop;
        return new JwtBearerEvents
        {
            // RFC 6750 §2.3 allows a token in the query string; we never read one (it ends up in logs and Referer headers).
            // Only the Authorization header counts, read once by PresentedCredentials (the token handler reads it the same
            // way to decide whether a DPoP proof is needed), so JwtBearer never falls back to its own reading.
            OnMessageReceived = context =>
            {
                var presented = PresentedCredentials.Read(context.Request, dpop);
                switch (presented.Scheme)
                {
                    case PresentedScheme.Bearer or PresentedScheme.Dpop:
                        context.Token = presented.Token;
                        break;
                    case PresentedScheme.Ambiguous:
                        context.Fail(new TesseraRequestRejectedException("Send the access token in exactly one Authorization header."));
                        break;
                    default:
                        // No credentials, or a scheme this API does not accept: the same as none.
                        context.NoResult();
                        break;
                }
                return Task.CompletedTask;
            },
            // Our own challenge for every failure: the stock descriptions quote values from the token (its issuer, its
            // audience), which a stranger controls, back into a response header; and the stock one knows only Bearer.
            OnChallenge = context =>
            {
                context.HandleResponse();
                var failure = context.AuthenticateFailure is AggregateException { InnerExceptions.Count: > 0 } all ? all.InnerExceptions[0] : context.AuthenticateFailure;
                var status = StatusCodes.Status401Unauthorized;
                string? error = null, description = null;
                switch (failure)
                {
                    case null:
                        // RFC 6750 §3.1: "If the request lacks any authentication information ..., the resource server
                        // SHOULD NOT include an error code or other error information."
                        break;
                    case TesseraRequestRejectedException rejected:
                        // RFC 6750 §3.1 invalid_request → 400; RFC 9449 Figure 19 for several Authorization headers.
                        status = StatusCodes.Status400BadRequest;
                        (error, description) = ("invalid_request", rejected.Message);
                        break;
                    case TesseraDpopProofRejectedException proof:
                        (error, description) = (proof.Error, proof.Message);
                        // RFC 9449 §9: "Resource servers use an HTTP 401 (Unauthorized) error code with an accompanying
                        // WWW-Authenticate: DPoP value and DPoP-Nonce value".
                        if (proof.Nonce is not null) context.Response.Headers["DPoP-Nonce"] = proof.Nonce;
                        break;
                    default:
                        (error, description) = ("invalid_token", ConfigureTesseraJwtBearer.Describe(failure));
                        break;
                }
                context.Response.StatusCode = status;
                Challenge(context.Response, dpop.AcceptsBearer, dpop.AcceptsDpop, dpop.Algorithms, PresentedCredentials.Read(context.Request, dpop).Scheme, error, description, scope: null);
                return Task.CompletedTask;
            },
            // RFC 6750 §3.1: 403 with error="insufficient_scope" and the scope the resource needs; RFC 9449 §7.1 allows
            // the same parameters in the DPoP challenge, which carries them when the request used DPoP.
            OnForbidden = context =>
            {
                var viaDpop = PresentedCredentials.Read(context.Request, dpop).Scheme == PresentedScheme.Dpop;
                Challenge(context.Response, offerBearer: !viaDpop, offerDpop: viaDpop, dpop.Algorithms, viaDpop ? PresentedScheme.Dpop : PresentedScheme.Bearer,
                    "insufficient_scope", null, ScopeAuthorizationHandler.MissingScopes(context.HttpContext));
                return Task.CompletedTask;
            },
        };
    }

    /// <summary>
    /// One <c>WWW-Authenticate</c> value per accepted scheme. RFC 9449 §7.2: "If the mechanism used to attempt
    /// authentication could be established unambiguously, then the corresponding challenge SHOULD be used to deliver
    /// error information ... Otherwise, both Bearer and DPoP challenges MAY be used to deliver error information."
    /// §7.1: "An algs parameter SHOULD be included to signal to the client the JWS algorithms that are acceptable for
    /// the DPoP proof JWT."
    /// </summary>
    internal static void Challenge(HttpResponse response, bool offerBearer, bool offerDpop, IEnumerable<string> algs, PresentedScheme used,
        string? error, string? description, string? scope)
    {
        var bearerCarries = used is not PresentedScheme.Dpop;
        var dpopCarries = used is not PresentedScheme.Bearer;
        if (offerBearer)
            response.Headers.Append(HeaderNames.WWWAuthenticate, Format("Bearer", bearerCarries ? error : null, description, scope, algs: null));
        if (offerDpop)
            response.Headers.Append(HeaderNames.WWWAuthenticate, Format("DPoP", dpopCarries ? error : null, description, scope, string.Join(' ', algs)));
    }

    /// <summary>Every value written here is ours (codes, fixed descriptions, validated scopes and algorithm names), never the request's, so nothing needs escaping.</summary>
    private static string Format(string scheme, string? error, string? description, string? scope, string? algs)
    {
        var parameters = new List<string>(4);
        if (error is not null)
        {
            parameters.Add($"error=\"{error}\"");
            if (description is not null) parameters.Add($"error_description=\"{description}\"");
            if (scope is { Length: > 0 }) parameters.Add($"scope=\"{scope}\"");
        }
        if (algs is not null) parameters.Add($"algs=\"{algs}\"");
        return parameters.Count == 0 ? scheme : new StringBuilder(scheme).Append(' ').AppendJoin(", ", parameters).ToString();
    }
}
