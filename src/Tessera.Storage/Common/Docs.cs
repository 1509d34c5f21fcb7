using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tessera.Storage.Common;

/// <summary>Clients and users are stored as JSON documents: read-mostly, and one shape for every database.</summary>
internal static class Docs
{
    public static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Write<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Read<T>(string json) => JsonSerializer.Deserialize<T>(json, Options)
        ?? throw new InvalidDataException($"Stored {typeof(T).Name} document is empty.");

    public static string Scopes(IReadOnlyList<string> scopes) => string.Join(' ', scopes);

    public static IReadOnlyList<string> Scopes(string value) => value.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    public static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    public static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);
}
