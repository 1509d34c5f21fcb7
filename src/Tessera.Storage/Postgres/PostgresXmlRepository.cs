using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Npgsql;
using static Tessera.Storage.Common.Docs;

namespace Tessera.Storage.Postgres;

/// <summary>
/// The ASP.NET Core data-protection key ring (it protects the login cookie, antiforgery tokens and the second-factor
/// state) in the <c>dataprotection_keys</c> table, so every node behind the load balancer reads a cookie another node
/// wrote. Register it as <see cref="KeyManagementOptions.XmlRepository"/>; the XML arrives already encrypted by the
/// configured <see cref="Microsoft.AspNetCore.DataProtection.XmlEncryption.IXmlEncryptor"/>. Rows are only ever added
/// (the key manager expresses revocation as another element), so nodes never overwrite each other.
/// </summary>
public sealed class PostgresXmlRepository(PostgresStore store) : IXmlRepository
{
    private readonly NpgsqlDataSource _db = store.DataSource;

    public IReadOnlyCollection<XElement> GetAllElements()
    {
        // The key manager calls this synchronously (at start-up and when its cached key ring expires).
        using var cmd = _db.CreateCommand("SELECT xml FROM dataprotection_keys ORDER BY id");
        using var r = cmd.ExecuteReader();
        var elements = new List<XElement>();
        while (r.Read()) elements.Add(XElement.Parse(r.GetString(0)));
        return elements.AsReadOnly();
    }

    public void StoreElement(XElement element, string friendlyName)
    {
        using var cmd = _db.CreateCommand("INSERT INTO dataprotection_keys (friendly_name, xml, created_at) VALUES (@n, @x, @at)");
        cmd.Parameters.Text("n", friendlyName);
        cmd.Parameters.Text("x", element.ToString(SaveOptions.DisableFormatting));
        cmd.Parameters.Time("at", DateTimeOffset.UtcNow);
        cmd.ExecuteNonQuery();
    }

    /// <summary>
    /// Makes sure an active key exists before the node serves. Nodes that start together on an empty table would each
    /// create (and at once use) a key of their own, and a node that loaded its key ring before another node's key
    /// arrived would refuse that node's cookies until its ring refreshes; under this advisory lock the first node
    /// creates the key and the others find it. Later keys are made ahead of their activation by the key manager,
    /// and reach every node in time.
    /// </summary>
    public async Task EnsureKeyAsync(IKeyManager keys, TimeSpan newKeyLifetime, CancellationToken ct)
    {
        await using var c = await _db.OpenConnectionAsync(ct);
        await using var tx = await c.BeginTransactionAsync(ct);
        await using (var cmd = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({PostgresSchema.DataProtectionKeyLock})", c, tx))
            await cmd.ExecuteNonQueryAsync(ct);
        var now = DateTimeOffset.UtcNow;
        if (!keys.GetAllKeys().Any(k => !k.IsRevoked && k.ActivationDate <= now && k.ExpirationDate > now))
            keys.CreateNewKey(now, now + newKeyLifetime);
        await tx.CommitAsync(ct);
    }
}
