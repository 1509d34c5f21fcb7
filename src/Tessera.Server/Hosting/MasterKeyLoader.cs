using System.Security.Cryptography;

namespace Tessera.Server.Hosting;

internal static class MasterKeyLoader
{
    /// <summary>The configured key, or (single-node SQLite only) one kept in the data directory, created on first start with mode 0600.</summary>
    public static byte[] Load(ServerSettings settings)
    {
        if (settings.MasterKey is { } configured) return Convert.FromBase64String(configured);
        var path = Path.Combine(settings.DataDirectory, "master.key");
        if (File.Exists(path)) return Convert.FromBase64String(File.ReadAllText(path).Trim());
        Directory.CreateDirectory(settings.DataDirectory);
        var key = RandomNumberGenerator.GetBytes(32);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var f = new StreamWriter(new FileStream(path, options))) f.Write(Convert.ToBase64String(key));
        return key;
    }
}
