using System.Globalization;
using Warden.FakeCyberTipline;

// Standalone fake for demos: `dotnet run --project src/Warden.FakeCyberTipline -- [--port 5080]`.
// Point Warden's test CyberTipline environment at the printed base URL with the printed credentials.
var port = args.SkipWhile(a => a != "--port").Skip(1).Select(a => int.Parse(a, CultureInfo.InvariantCulture)).FirstOrDefault(5080);
await using var server = await FakeCyberTiplineServer.StartAsync(new FakeCyberTiplineOptions { Port = port });
Console.WriteLine($"Fake CyberTipline at {server.BaseUri} (user {server.Username}, password {server.Password}). Ctrl+C stops.");
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) =>
{
    e.Cancel = true;
    stop.Cancel();
};

// SIGTERM too (kill, systemd, a test harness): without it the process ignores the polite stop and only dies by SIGKILL.
using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, context =>
{
    context.Cancel = true;
    stop.Cancel();
});
try
{
    await Task.Delay(Timeout.Infinite, stop.Token);
}
catch (OperationCanceledException)
{
}

foreach (var r in server.Reports)
{
    Console.WriteLine($"report {r.ReportId}: {r.State}, {r.Files.Count} file(s)");
}
