using Warden.Review.Evidence;

namespace Warden.Review.Reporting;

/// <summary>Reads upload media from the vault as a logged system read (not a person's view).</summary>
public sealed class VaultDeliveryMedia(EvidenceVault vault) : IDeliveryMedia
{
    /// <inheritdoc/>
    public async Task<byte[]?> ReadAsync(string caseId, string evidenceRef, CancellationToken cancellationToken)
    {
        try
        {
            var content = await vault.ReadAsync(evidenceRef, new EvidenceAccess(EvidenceActor.Component("system:report-outbox"), $"CyberTipline upload for case {caseId}", Revealed: false), cancellationToken).ConfigureAwait(false);
            return content.Media;
        }
        catch (EvidenceException ex) when (ex.Error is EvidenceError.NotFound or EvidenceError.Destroyed)
        {
            return null;
        }
    }
}
