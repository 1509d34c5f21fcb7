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
}
