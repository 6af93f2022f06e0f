namespace Warden.Review.Reporting;

/// <summary>The wire name of a delivery status (API, console and messages agree on one spelling).</summary>
public static class DeliveryStatusNames
{
    /// <summary>Lower-case name; dead-lettered as <c>dead_lettered</c>.</summary>
    public static string WireName(this DeliveryStatus s) => s == DeliveryStatus.DeadLettered ? "dead_lettered" : s.ToString().ToLowerInvariant();
}
