namespace OpenCode.Rpc.Tests.Infrastructure;

/// <summary>Waits for something another thread or process does in the background (a watcher's report, a helper's
/// cleanup): checks every 25 ms, gives up after the timeout (generous: the outcome is asserted, not the time).</summary>
public static class Poll
{
    public static async Task<bool> UntilAsync(Func<bool> done, double timeoutSeconds = 10)
    {
        var deadline = DateTime.UtcNow.AddSeconds(timeoutSeconds);
        while (!done())
        {
            if (DateTime.UtcNow > deadline)
            {
                return false;
            }

            await Task.Delay(25);
        }

        return true;
    }
}
