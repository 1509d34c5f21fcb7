namespace Tessera.Server.Cli;

/// <summary>
/// Splits the command line: words and <c>--flag [value]</c> options are the command's; <c>--Section:Key=value</c>
/// and <c>--urls=…</c> are configuration for the host.
/// </summary>
public sealed class CliArgs
{
    public List<string> Words { get; } = [];
    public Dictionary<string, List<string>> Options { get; } = new(StringComparer.OrdinalIgnoreCase);
    public List<string> Configuration { get; } = [];

    public static CliArgs Parse(string[] args)
    {
        var result = new CliArgs();
        for (var i = 0; i < args.Length; i++)
        {
            var a = args[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && (a.Contains(':') || a.StartsWith("--urls", StringComparison.OrdinalIgnoreCase) || a.StartsWith("--environment", StringComparison.OrdinalIgnoreCase)))
            {
                result.Configuration.Add(a);
                if (!a.Contains('=') && i + 1 < args.Length) result.Configuration.Add(args[++i]);
            }
            else if (a.StartsWith("--", StringComparison.Ordinal))
            {
                var name = a[2..];
                string? value = null;
                var eq = name.IndexOf('=');
                if (eq >= 0) (name, value) = (name[..eq], name[(eq + 1)..]);
                else if (i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) && !IsFlag(name)) value = args[++i];
                if (!result.Options.TryGetValue(name, out var list)) result.Options[name] = list = [];
                list.Add(value ?? "true");
            }
            else
            {
                result.Words.Add(a);
            }
        }
        return result;
    }

    private static readonly HashSet<string> Flags = new(StringComparer.OrdinalIgnoreCase) { "public", "first-party", "native", "demo", "password-stdin", "no-rotation", "json", "require-dpop", "all" };

    private static bool IsFlag(string name) => Flags.Contains(name);

    public string? Get(string name) => Options.TryGetValue(name, out var v) ? v[^1] : null;

    public IReadOnlyList<string> All(string name) => Options.TryGetValue(name, out var v) ? v : [];

    public bool Has(string name) => Options.ContainsKey(name);
}
