namespace Tessera.Storage.Sqlite;

/// <summary>The store's background loops (WAL checkpoints, the client-change poll): one round per interval until stopped.</summary>
internal static class BackgroundRounds
{
    /// <summary>
    /// Runs <paramref name="round"/> every <paramref name="interval"/> (first at once when <paramref name="runAtStart"/>)
    /// until <paramref name="stop"/> is cancelled. A round that throws is skipped, never ends the loop: each caller's
    /// own rule makes a missed round safe (a bounded WAL, a cache that goes unused when its poll is old).
    /// </summary>
    public static async Task RunAsync(TimeSpan interval, TimeProvider time, bool runAtStart, Action round, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(interval, time);
        try
        {
            if (runAtStart) Attempt(round);
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false)) Attempt(round);
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static void Attempt(Action round)
    {
        try
        {
            round();
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // Busy, a transient I/O error, anything: the next round tries again.
        }
    }
}
