namespace Tessera.Bff.Tests.Infrastructure;

/// <summary>Finds the built Tessera server and sample host next to this test assembly's build (same configuration).</summary>
public static class BuildOutput
{
    private static readonly DirectoryInfo AssemblyDirectory = new(AppContext.BaseDirectory);

    /// <summary>tests/Tessera.Bff.Tests/bin/{Configuration}/{tfm}/ → {Configuration}.</summary>
    public static string Configuration => AssemblyDirectory.Parent!.Name;

    public static string TargetFramework => AssemblyDirectory.Name;

    public static string RepositoryRoot
    {
        get
        {
            for (var dir = AssemblyDirectory; dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Tessera.slnx"))) return dir.FullName;
            }
            throw new InvalidOperationException($"Tessera.slnx was not found above {AssemblyDirectory.FullName}.");
        }
    }

    /// <summary>The built server; TESSERA_TEST_TESSERA_DLL points the tests at another build (for example one with a fix to try).</summary>
    public static string TesseraDll => Environment.GetEnvironmentVariable("TESSERA_TEST_TESSERA_DLL") is { Length: > 0 } other
        ? other
        : Dll(Path.Combine("src", "Tessera.Server"), "tessera.dll");

    public static string BffHostDll => Dll(Path.Combine("samples", "BffHost"), "BffHost.dll");

    /// <summary>Screenshots and other artifacts: tests/Tessera.Bff.Tests/TestResults/screenshots/.</summary>
    public static string ScreenshotDirectory
    {
        get
        {
            var dir = Environment.GetEnvironmentVariable("TESSERA_TEST_SCREENSHOTS")
                ?? Path.Combine(RepositoryRoot, "tests", "Tessera.Bff.Tests", "TestResults", "screenshots");
            Directory.CreateDirectory(dir);
            return dir;
        }
    }

    private static string Dll(string project, string file)
    {
        var path = Path.Combine(RepositoryRoot, project, "bin", Configuration, TargetFramework, file);
        if (!File.Exists(path))
            throw new InvalidOperationException($"{path} is missing. Build the solution (the test project references it with ReferenceOutputAssembly=false, so `dotnet test` builds it).");
        return path;
    }
}
