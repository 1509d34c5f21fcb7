using System.Security.Cryptography;
using Microsoft.Extensions.DependencyInjection;
using Tessera.Core.Sessions;
using Tessera.Tests.Infrastructure;

namespace Tessera.Tests.Feed;

/// <summary>A client declared in configuration whose Secret changes between two starts: that is a rotation too.</summary>
public sealed class ConfiguredSecretRotationTests : IAsyncLifetime
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "tessera-config-rotation-" + Guid.NewGuid().ToString("N"));
    private readonly string _masterKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        try { Directory.Delete(_dataDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        return Task.CompletedTask;
    }

    private Task<TesseraTestServer> StartAsync(string secret) => TesseraTestServer.StartAsync(
    [
        $"--Tessera:DataDirectory={_dataDir}", $"--Tessera:MasterKey={_masterKey}",
        "--Tessera:Clients:0:Id=reports", $"--Tessera:Clients:0:Secret={secret}",
        "--Tessera:Clients:0:GrantTypes:0=client_credentials", "--Tessera:Clients:0:Scopes:0=api.read",
    ]);

    [Fact]
    public async Task ANewSecretInTheConfiguration_IsPublishedAsARotation_TheSameOneIsNot()
    {
        var first = new string('a', 40);
        await using (var server = await StartAsync(first))
        {
            Assert.Null((await server.Store.Clients.FindAsync("reports", default))!.SecretRotatedAt);
        }
        await using (var server = await StartAsync(first))
        {
            Assert.Empty(await server.Services.GetRequiredService<IRevocationFeedStore>().ReadAfterAsync(0, 10, default));
        }
        await using (var server = await StartAsync(new string('b', 40)))
        {
            var e = Assert.Single(await server.Services.GetRequiredService<IRevocationFeedStore>().ReadAfterAsync(0, 10, default));
            Assert.Equal("reports", e.ClientId);
            Assert.Null(e.UserId);
            Assert.Equal(RevocationReasons.ClientSecretRotated, e.Reason);
            var rotated = (await server.Store.Clients.FindAsync("reports", default))!.SecretRotatedAt;
            Assert.NotNull(rotated);
            Assert.Equal(RevocationTimes.AfterSecondOf(rotated.Value), e.RevokedBefore);
        }
    }
}
