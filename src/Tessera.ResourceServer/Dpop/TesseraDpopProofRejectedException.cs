using Microsoft.IdentityModel.Tokens;

namespace Tessera.ResourceServer;

/// <summary>
/// A request refused because of its DPoP proof (RFC 9449). <see cref="Error"/> is the code for the <c>DPoP</c>
/// challenge: <c>invalid_dpop_proof</c> ("the DPoP proof itself was deemed invalid based on the criteria of Section
/// 4.3", §7.1) or <c>use_dpop_nonce</c> (§9). The message is safe to show: it never contains the token or the proof.
/// </summary>
public sealed class TesseraDpopProofRejectedException(string error, string message, string? nonce = null) : SecurityTokenValidationException(message)
{
    public const string InvalidDpopProof = "invalid_dpop_proof";
    public const string UseDpopNonce = "use_dpop_nonce";

    /// <summary>The RFC 9449 §12.2 error code.</summary>
    public string Error { get; } = error;

    /// <summary>A fresh server nonce to send in the <c>DPoP-Nonce</c> header, when one is required.</summary>
    public string? Nonce { get; } = nonce;
}

/// <summary>A request that used more than one way of sending an access token (RFC 6750 §3.1 <c>invalid_request</c>, 400).</summary>
public sealed class TesseraRequestRejectedException(string message) : SecurityTokenValidationException(message);
