namespace Tessera.Core.Keys;

/// <summary>A signing key as stored: the private half encrypted with the master key.</summary>
public sealed record SigningKeyRecord
{
    public required string Kid { get; init; }
    public required string Algorithm { get; init; }
    public required byte[] ProtectedPrivateKey { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>When it starts signing; before that it is only announced in the JWKS.</summary>
    public required DateTimeOffset ActivatesAt { get; init; }
    /// <summary>When it stops being published; null for the current key.</summary>
    public DateTimeOffset? RetiresAt { get; init; }
}
