using System.Collections.Concurrent;

namespace Tessera.Storage.Common;

/// <summary>
/// Memoises the deserialisation of stored JSON documents (clients, users) that every token request reads.
/// It is not a cache of the data: the row is still read from the database on every call, and the remembered
/// object is reused only when the document text just read is exactly the text it was made from. A change on
/// any node is therefore seen at once; what is saved is the JSON parsing and the allocations it makes.
/// The documents are immutable records, so one instance can be shared by concurrent requests.
/// </summary>
internal sealed class DocCache<T>(int capacity = 4096) where T : class
{
    private readonly ConcurrentDictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    private sealed record Entry(string Json, T Value);

    public T Read(string key, string json)
    {
        if (_entries.TryGetValue(key, out var hit) && string.Equals(hit.Json, json, StringComparison.Ordinal))
            return hit.Value;
        var value = Docs.Read<T>(json);
        // Bounded: a full table starts over rather than growing with every id ever read.
        if (_entries.Count >= capacity) _entries.Clear();
        _entries[key] = new Entry(json, value);
        return value;
    }
}
