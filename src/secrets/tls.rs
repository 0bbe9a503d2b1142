//! The deployment's private CA and a certificate per role: every service both serves and
//! connects with its certificate (mutual TLS), so each one is good for both ends.

use super::files::write_private;
use super::{Layout, Role};
use anyhow::Context as _;
use rcgen::{
    BasicConstraints, Certificate, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::Ipv4Addr;
use time::{Duration, OffsetDateTime};

const CA_NAME: &str = "Astral deployment CA";
const CA_VALIDITY: Duration = Duration::days(3650);
const ROLE_VALIDITY: Duration = Duration::days(365);
/// How far in the past certificates start, for clocks that run a little behind.
const CLOCK_SKEW: Duration = Duration::minutes(5);

/// Writes `ca.pem`, `ca.key`, and `<role>.pem` and `<role>.key` for every role.
pub(super) fn write(layout: &Layout) -> anyhow::Result<()> {
    let ca = ca()?;
    write_private(&layout.ca_cert(), &ca.pem())?;
    write_private(&layout.ca_key(), &ca.key().serialize_pem())?;
    for role in Role::ALL {
        let (certificate, key) = role_certificate(role, &ca)
            .with_context(|| format!("make the {} certificate", role.as_str()))?;
        write_private(&layout.cert(role), &certificate.pem())?;
        write_private(&layout.key(role), &key.serialize_pem())?;
    }
    Ok(())
}

/// Gives every role a new key and certificate from the deployment's CA (`ca.key`), in
/// place: old and new certificates come from one CA, so processes can be restarted one by
/// one with theirs and still talk to the others.
pub(super) fn renew(layout: &Layout) -> anyhow::Result<()> {
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    };
    let ca_key = KeyPair::from_pem(&read(layout.ca_key())?).context("ca.key is not a key")?;
    let ca = Issuer::from_ca_cert_pem(&read(layout.ca_cert())?, ca_key)
        .context("ca.pem is not a CA certificate")?;
    for role in Role::ALL {
        let (certificate, key) = role_certificate(role, &ca)
            .with_context(|| format!("make the {} certificate", role.as_str()))?;
        replace_private(&layout.key(role), &key.serialize_pem())?;
        replace_private(&layout.cert(role), &certificate.pem())?;
    }
    Ok(())
}

/// Replaces a file's contents at once (a new private file renamed over it).
fn replace_private(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    let new = path.with_extension("new");
    let _ = std::fs::remove_file(&new);
    write_private(&new, contents)?;
    std::fs::rename(&new, path).with_context(|| format!("replace {}", path.display()))
}

/// A self-signed CA (ECDSA P-256) that signs end-entity certificates only.
fn ca() -> anyhow::Result<CertifiedIssuer<'static, KeyPair>> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(CA_VALIDITY);
    let key = KeyPair::generate().context("generate the CA key")?;
    CertifiedIssuer::self_signed(params, key).context("sign the CA certificate")
}

/// A certificate for `role` (ECDSA P-256) naming it, `localhost` and 127.0.0.1, for servers
/// and clients alike.
fn role_certificate(
    role: Role,
    ca: &Issuer<'_, KeyPair>,
) -> anyhow::Result<(Certificate, KeyPair)> {
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(role.as_str());
    params.subject_alt_names = vec![
        SanType::DnsName(role.as_str().try_into()?),
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(Ipv4Addr::LOCALHOST.into()),
    ];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(ROLE_VALIDITY);
    let key = KeyPair::generate().context("generate a key")?;
    let certificate = params.signed_by(&key, ca).context("sign the certificate")?;
    Ok((certificate, key))
}

fn common_name(name: &str) -> DistinguishedName {
    let mut distinguished_name = DistinguishedName::new();
    distinguished_name.push(DnType::CommonName, name);
    distinguished_name
}

/// From a little before now (see [`CLOCK_SKEW`]) to `length` from now.
fn validity(length: Duration) -> (OffsetDateTime, OffsetDateTime) {
    let now = OffsetDateTime::now_utc();
    (now - CLOCK_SKEW, now + length)
}
