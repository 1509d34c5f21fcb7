namespace Tessera.Core.Passwords;

/// <summary>
/// NIST SP 800-63B §5.1.1.2 style: at least 8 characters, up to 1024 accepted and never truncated, not on the
/// shipped list of common passwords (compared case-insensitively).
/// </summary>
public static class PasswordPolicy
{
    public const int MinLength = 8;
    public const int MaxLength = 1024;

    private static readonly Lazy<HashSet<string>> Common = new(() =>
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream("common-passwords.txt")
            ?? throw new InvalidOperationException("The common-passwords list is missing from the build.");
        using var reader = new StreamReader(stream);
        var set = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        while (reader.ReadLine() is { } line)
            if (line.Length > 0) set.Add(line.Trim());
        return set;
    });

    /// <summary>Null when acceptable, else a sentence for the user.</summary>
    public static string? Check(string password)
    {
        if (password.Length < MinLength) return $"Passwords need at least {MinLength} characters.";
        if (password.Length > MaxLength) return $"Passwords may have at most {MaxLength} characters.";
        if (Common.Value.Contains(password)) return "That password is too common; choose another.";
        return null;
    }
}
