namespace Warden.Core.Hashing.Pdq;

/// <summary>
/// The 8 dihedral transforms, in the reference's output order (pdq-photo-hasher --pdqdih-across).
/// They are also the 8 EXIF orientations, so querying all 8 covers rotated and mirrored re-uploads.
/// </summary>
public enum Dihedral
{
    /// <summary>The image as decoded.</summary>
    Original = 0,

    /// <summary>Rotated 90 degrees counter-clockwise.</summary>
    Rotate90 = 1,

    /// <summary>Rotated 180 degrees.</summary>
    Rotate180 = 2,

    /// <summary>Rotated 90 degrees clockwise.</summary>
    Rotate270 = 3,

    /// <summary>Top and bottom swapped.</summary>
    FlipX = 4,

    /// <summary>Mirror image (left and right swapped).</summary>
    FlipY = 5,

    /// <summary>Flip about the main diagonal (upper-left and lower-right corners stay).</summary>
    FlipPlus1 = 6,

    /// <summary>Flip about the anti-diagonal (upper-right and lower-left corners stay).</summary>
    FlipMinus1 = 7,
}
