using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Tessera.Core.Crypto;

namespace Tessera.Storage.Common;

/// <summary>
/// Encrypts each data-protection key at rest with the master key (<see cref="SecretProtector"/>, AES-256-GCM), like
/// the signing keys: a copy of the key table or of the key directory alone forges no cookie. Every node shares the
/// master key, so every node can read a key another node wrote. Register as <c>KeyManagementOptions.XmlEncryptor</c>.
/// </summary>
public sealed class MasterKeyXmlEncryptor(SecretProtector protector) : IXmlEncryptor
{
    internal const string Purpose = "tessera.dataprotection-key.v1";

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        var plaintext = Encoding.UTF8.GetBytes(plaintextElement.ToString(SaveOptions.DisableFormatting));
        try
        {
            var element = new XElement("encryptedKey",
                new XComment(" Encrypted with the Tessera master key (AES-256-GCM). "),
                new XElement("value", Convert.ToBase64String(protector.Protect(plaintext, Purpose))));
            return new EncryptedXmlInfo(element, typeof(MasterKeyXmlDecryptor));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}

/// <summary>
/// Reverses <see cref="MasterKeyXmlEncryptor"/>. The key manager creates it by type name with the application's
/// service provider, from which it takes the <see cref="SecretProtector"/>.
/// </summary>
public sealed class MasterKeyXmlDecryptor : IXmlDecryptor
{
    private readonly SecretProtector _protector;

    public MasterKeyXmlDecryptor(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        _protector = services.GetService(typeof(SecretProtector)) as SecretProtector
            ?? throw new InvalidOperationException("No SecretProtector is registered, so data-protection keys encrypted with the master key cannot be read.");
    }

    public XElement Decrypt(XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        byte[] sealedKey;
        try
        {
            sealedKey = Convert.FromBase64String((string?)encryptedElement.Element("value") ?? "");
        }
        catch (FormatException)
        {
            throw new CryptographicException("A data-protection key is damaged (its encrypted value is not Base64).");
        }
        var plaintext = _protector.Unprotect(sealedKey, MasterKeyXmlEncryptor.Purpose)
            ?? throw new CryptographicException("A data-protection key cannot be decrypted: it was encrypted with another Tessera:MasterKey, or it is damaged.");
        try
        {
            return XElement.Parse(Encoding.UTF8.GetString(plaintext));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }
}
