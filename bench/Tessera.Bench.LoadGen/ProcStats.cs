using System.Globalization;

namespace Tessera.Bench.LoadGen;

/// <summary>Server resource figures read from /proc for the server's pid.</summary>
public static class ProcStats
{
    private const double ClockTicks = 100.0; // sysconf(_SC_CLK_TCK) on Linux x86-64

    /// <summary>utime + stime of the process, in seconds (fields 14 and 15 of /proc/pid/stat).</summary>
    public static double CpuSeconds(int pid)
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // The command name (field 2) is in parentheses and may hold spaces: split after the last ')'.
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        // rest[0] is field 3 (state), so field N is rest[N - 3].
        var utime = long.Parse(rest[14 - 3], CultureInfo.InvariantCulture);
        var stime = long.Parse(rest[15 - 3], CultureInfo.InvariantCulture);
        return (utime + stime) / ClockTicks;
    }

    /// <summary>utime + stime summed over several processes (the nodes of one system), in seconds.</summary>
    public static double CpuSeconds(IEnumerable<int> pids) => pids.Sum(CpuSeconds);

    /// <summary>
    /// CPU seconds of a process and of its children: the process's utime + stime + cutime + cstime (children it has
    /// reaped: PostgreSQL backends that ended) plus utime + stime + cutime + cstime of every live child (the
    /// postmaster's backends and background workers are its direct children). Used for the database server.
    /// </summary>
    public static double TreeCpuSeconds(int rootPid)
    {
        long ticks = 0;
        if (ReadStat(rootPid) is { } root) ticks += root.Utime + root.Stime + root.Cutime + root.Cstime;
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid == rootPid) continue;
            if (ReadStat(pid) is { } child && child.Ppid == rootPid) ticks += child.Utime + child.Stime + child.Cutime + child.Cstime;
        }
        return ticks / ClockTicks;
    }

    private readonly record struct Stat(int Ppid, long Utime, long Stime, long Cutime, long Cstime);

    private static Stat? ReadStat(int pid)
    {
        string stat;
        try
        {
            stat = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null; // ended meanwhile
        }
        var rest = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        long F(int field) => long.Parse(rest[field - 3], CultureInfo.InvariantCulture);
        return new Stat((int)F(4), F(14), F(15), F(16), F(17));
    }

    /// <summary>The highest VmHWM (peak RSS) of several processes, in kB: the peak of the largest node.</summary>
    public static long MaxPeakRssKb(IEnumerable<int> pids) => pids.Max(p => StatusKb(p, "VmHWM"));

    /// <summary>A /proc/pid/status field in kB (VmHWM = peak RSS, VmRSS = current RSS).</summary>
    public static long StatusKb(int pid, string field)
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (!line.StartsWith(field + ":", StringComparison.Ordinal)) continue;
            var value = line[(field.Length + 1)..].Trim().Split(' ')[0];
            return long.Parse(value, CultureInfo.InvariantCulture);
        }
        return -1;
    }

    /// <summary>Resets the peak RSS (VmHWM) to the current RSS: "5" to /proc/pid/clear_refs (Linux 4.0+). False when not allowed.</summary>
    public static bool ResetPeakRss(int pid)
    {
        try
        {
            File.WriteAllText($"/proc/{pid}/clear_refs", "5");
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    public static void ResetPeakRss(IEnumerable<int> pids)
    {
        foreach (var pid in pids) ResetPeakRss(pid);
    }

    /// <summary>CPU seconds the whole machine spent busy (all cores, /proc/stat: everything but idle and iowait).</summary>
    public static double MachineBusySeconds()
    {
        var cpu = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries);
        long total = 0;
        for (var i = 1; i < cpu.Length && i <= 8; i++) total += long.Parse(cpu[i], CultureInfo.InvariantCulture);
        var idle = long.Parse(cpu[4], CultureInfo.InvariantCulture) + long.Parse(cpu[5], CultureInfo.InvariantCulture);
        return (total - idle) / ClockTicks;
    }

    public static bool Alive(int pid) => Directory.Exists($"/proc/{pid}");

    public static bool Alive(IEnumerable<int> pids) => pids.All(Alive);
}
