namespace Warden.Fuzz;

/// <summary>Resident memory of this process from /proc (Linux); 0 elsewhere.</summary>
public static class ProcessMemory
{
    /// <summary>Current resident set (VmRSS), bytes.</summary>
    public static long CurrentRss() => Read("VmRSS:");

    /// <summary>Peak resident set (VmHWM), bytes.</summary>
    public static long PeakRss() => Read("VmHWM:");

    private static long Read(string field)
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/status"))
            {
                if (line.StartsWith(field, StringComparison.Ordinal))
                {
                    var kb = line[field.Length..].Trim().Split(' ')[0];
                    return long.Parse(kb, System.Globalization.CultureInfo.InvariantCulture) * 1024;
                }
            }
        }
        catch (IOException)
        {
        }

        return 0;
    }
}
