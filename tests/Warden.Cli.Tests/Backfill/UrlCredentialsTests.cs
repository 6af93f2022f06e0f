using FsCheck;
using FsCheck.Fluent;
using Warden.Cli.Backfill;

namespace Warden.Cli.Tests.Backfill;

/// <summary>UrlCredentials finds the user-information part of any URL and removes it from any text around it.</summary>
public sealed class UrlCredentialsTests
{
    [Fact]
    public void Whatever_the_secret_redaction_removes_it_and_keeps_the_host()
    {
        var secretChars = Gen.Elements("abcXYZ019-._~!$&'()*+,;=:%@ ".ToCharArray()).ArrayOf().Select(c => "S" + new string(c) + "Q");
        var schemes = Gen.Elements("nats", "tls", "ws", "https", "http", "s3");
        var tails = Gen.Elements("", "/", "/a/b.jpg", "?x=1", "#f", "/@me.jpg", "/p?next=a@b");
        Prop.ForAll(secretChars.ToArbitrary(), schemes.ToArbitrary(), tails.ToArbitrary(), (secret, scheme, tail) =>
        {
            var url = $"{scheme}://{secret}@host.example:4222{tail}";
            Assert.Equal(secret, UrlCredentials.Of(url));
            var text = $"warden: cannot use {url}: failed for {url}";
            var redacted = UrlCredentials.Redact(text, url);
            Assert.DoesNotContain(secret, redacted, StringComparison.Ordinal);
            Assert.Contains($"{scheme}://***@host.example:4222{tail}", redacted, StringComparison.Ordinal);
        }).Check(Config.QuickThrowOnFailure.WithMaxTest(500));
    }

    [Theory]
    [InlineData("nats://127.0.0.1:4222")]
    [InlineData("/srv/uploads/@me.jpg")]
    [InlineData("https://host/a/@b")]
    [InlineData("https://host?x=a@b")]
    [InlineData("https://host#a@b")]
    [InlineData("no scheme@all")]
    [InlineData("://@")]
    [InlineData("")]
    public void Urls_without_credentials_are_left_alone(string url)
    {
        Assert.Null(UrlCredentials.Of(url));
        Assert.Equal("x " + url, UrlCredentials.Redact("x " + url, url));
    }
}
