using System.Net.Http.Headers;

namespace Tessera.ResourceServer.Tests.Infrastructure;

/// <summary>The <c>WWW-Authenticate</c> challenges of a response, one per scheme (RFC 9449 §7.2: Bearer and DPoP side by side).</summary>
public static class Challenges
{
    public static AuthenticationHeaderValue Bearer(HttpResponseMessage response) => Of(response, "Bearer");

    public static AuthenticationHeaderValue Dpop(HttpResponseMessage response) => Of(response, "DPoP");

    public static AuthenticationHeaderValue Of(HttpResponseMessage response, string scheme)
    {
        var all = response.Headers.WwwAuthenticate.ToList();
        Assert.True(all.Count(c => c.Scheme == scheme) == 1, $"expected one {scheme} challenge, got: {response.Headers.WwwAuthenticate}");
        return all.Single(c => c.Scheme == scheme);
    }

    /// <summary>The bare DPoP challenge that goes with a Bearer error: the algorithms, and no error of its own.</summary>
    public static void AssertBareDpop(HttpResponseMessage response)
    {
        var dpop = Dpop(response).Parameter ?? "";
        Assert.StartsWith("algs=\"ES256 ", dpop, StringComparison.Ordinal);
        Assert.DoesNotContain("error=", dpop, StringComparison.Ordinal);
    }
}
