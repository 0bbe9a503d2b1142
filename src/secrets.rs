//! `astral-admin secrets init`: a deployment's secrets written into one new directory — a
//! private CA and a certificate per role, NATS nkeys and the server's configuration, event
//! signing keys, the auth service's key-encryption key, Garage's RPC secret and admin token,
//! the messaging service's S3 access key and Web Push (VAPID) key, and one env file per role
//! naming them.

mod env;
mod files;
mod garage;
mod keys;
mod layout;
mod nats;
mod tls;

pub use env::role_env;

use anyhow::Context as _;
use layout::{Layout, Role};
use std::path::Path;

/// Every role of a deployment: each gets its own certificate, nkey and env file.
pub const ROLES: [&str; 5] = [
    Role::Auth.as_str(),
    Role::Social.as_str(),
    Role::Messaging.as_str(),
    Role::Gateway.as_str(),
    Role::Admin.as_str(),
];

/// The port `nats.conf` listens on unless told otherwise.
pub const DEFAULT_NATS_PORT: u16 = 4222;

/// What `init` may vary.
#[derive(Debug, Clone)]
pub struct InitOptions {
    /// The port nats-server listens on (on 127.0.0.1).
    pub nats_port: u16,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self {
            nats_port: DEFAULT_NATS_PORT,
        }
    }
}

/// Writes every secret of a deployment into `dir`, which must be missing or empty (secrets
/// are never overwritten). The directory is made private (0700), every file too (0600).
pub fn init(dir: &Path, options: &InitOptions) -> anyhow::Result<()> {
    let layout = Layout::new(files::prepare_dir(dir)?);
    tls::write(&layout).context("write the CA and the role certificates")?;
    let nkeys = nats::write_nkeys(&layout).context("write the NATS nkeys")?;
    nats::write_config(&layout, options.nats_port, &nkeys).context("write nats.conf")?;
    keys::write_event_keys(&layout).context("write the event signing keys")?;
    keys::write_key_encryption_key(&layout).context("write the key-encryption key")?;
    keys::write_vapid_key(&layout).context("write the Web Push (VAPID) key")?;
    let s3_keys = garage::write(&layout).context("write Garage's secrets and the S3 key")?;
    env::write(&layout, &s3_keys).context("write the env files")?;
    Ok(())
}

/// Renews every role's key and certificate in `dir` (made by [`init`]) from its CA, leaving
/// everything else as it is. Processes pick theirs up when restarted, one at a time.
pub fn renew_certificates(dir: &Path) -> anyhow::Result<()> {
    let dir = dir
        .canonicalize()
        .with_context(|| format!("{} is not a secrets directory", dir.display()))?;
    tls::renew(&Layout::new(dir)).context("renew the role certificates")
}

#[cfg(test)]
mod tests {
    use super::*;
    use astral_common::testing::TempDir;
    use astral_messaging::push::vapid::VapidKey;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use std::os::unix::fs::PermissionsExt as _;
    use std::path::PathBuf;
    use x509_parser::extensions::GeneralName;
    use x509_parser::pem::{Pem, parse_x509_pem};

    /// A fresh deployment in `<temp>/secrets`, which `init` creates.
    fn initialised() -> (TempDir, PathBuf) {
        let temp = TempDir::new();
        let dir = temp.0.join("secrets");
        init(&dir, &InitOptions::default()).unwrap();
        (temp, dir)
    }

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn read(dir: &Path, name: &str) -> String {
        std::fs::read_to_string(dir.join(name)).unwrap()
    }

    fn pem(dir: &Path, name: &str) -> Pem {
        parse_x509_pem(read(dir, name).as_bytes()).unwrap().1
    }

    #[test]
    fn a_directory_that_is_not_empty_is_refused_and_left_alone() {
        let temp = TempDir::new();
        std::fs::write(temp.0.join("precious"), "keep me").unwrap();
        let error = init(&temp.0, &InitOptions::default()).unwrap_err();
        let message = format!("{error:#}");
        assert!(message.contains(&temp.0.display().to_string()), "{message}");
        assert_eq!(names_in(&temp.0), ["precious"]);
    }

    #[test]
    fn an_existing_empty_directory_is_used_and_made_private() {
        let temp = TempDir::new();
        std::fs::set_permissions(&temp.0, std::fs::Permissions::from_mode(0o755)).unwrap();
        init(&temp.0, &InitOptions::default()).unwrap();
        assert_eq!(mode(&temp.0), 0o700);
        assert!(temp.0.join("ca.pem").is_file());
    }

    #[test]
    fn init_writes_the_whole_layout_readable_by_its_owner_only() {
        let (_temp, dir) = initialised();
        assert_eq!(mode(&dir), 0o700);
        let mut expected: Vec<String> = ["auth.kek", "ca.key", "ca.pem", "event-keys.pub"]
            .into_iter()
            .chain(["nats.conf", "garage.rpc-secret", "garage.admin-token"])
            .chain(["messaging.s3.id", "messaging.s3.secret"])
            .chain(["messaging.vapid.pem"])
            .map(str::to_owned)
            .collect();
        for role in ROLES {
            expected.extend(["pem", "key", "nk", "env"].map(|kind| format!("{role}.{kind}")));
        }
        expected.extend(["auth", "social", "messaging"].map(|role| format!("{role}.event.key")));
        expected.sort();
        assert_eq!(names_in(&dir), expected);
        for name in expected {
            assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
        }
    }

    #[test]
    fn every_role_certificate_is_signed_by_the_ca_and_names_its_role() {
        let (_temp, dir) = initialised();
        let ca_pem = pem(&dir, "ca.pem");
        let ca = ca_pem.parse_x509().unwrap();
        assert!(ca.is_ca());
        let ca_name = ca.subject().iter_common_name().next().unwrap();
        assert_eq!(ca_name.as_str().unwrap(), "Astral deployment CA");
        for role in ROLES {
            let role_pem = pem(&dir, &format!("{role}.pem"));
            let certificate = role_pem.parse_x509().unwrap();
            certificate.verify_signature(Some(ca.public_key())).unwrap();
            assert_eq!(certificate.issuer(), ca.subject());
            let name = certificate.subject().iter_common_name().next().unwrap();
            assert_eq!(name.as_str().unwrap(), role);
            let names = &certificate.subject_alternative_name().unwrap().unwrap();
            assert_eq!(
                names.value.general_names,
                [
                    GeneralName::DNSName(role),
                    GeneralName::DNSName("localhost"),
                    GeneralName::IPAddress(&[127, 0, 0, 1]),
                ]
            );
            let usage = certificate.extended_key_usage().unwrap().unwrap().value;
            assert!(usage.server_auth && usage.client_auth, "{role}");
            assert!(!certificate.is_ca(), "{role}");
            let validity = certificate.validity();
            assert!(validity.is_valid(), "{role}");
            let days = (validity.not_after.timestamp() - validity.not_before.timestamp()) / 86_400;
            assert_eq!(days, 365, "{role}");
            let key = rcgen::KeyPair::from_pem(&read(&dir, &format!("{role}.key"))).unwrap();
            let public = &certificate.public_key().subject_public_key.data;
            assert_eq!(key.public_key_raw(), public.as_ref(), "{role}");
        }
    }

    #[test]
    fn env_files_name_absolute_paths_that_exist_and_the_s3_key_id() {
        let temp = TempDir::new();
        let dir = temp.0.join("parent/../secrets");
        init(&dir, &InitOptions::default()).unwrap();
        let canonical = dir.canonicalize().unwrap();
        for role in ROLES {
            let env = role_env(&dir, role).unwrap();
            let expected: Vec<(String, String)> = expected_env(role)
                .into_iter()
                .map(|(key, value)| {
                    let value = match value {
                        Expected::File(file) => canonical.join(file).display().to_string(),
                        Expected::ContentOf(file) => read(&dir, &file),
                    };
                    (key.to_owned(), value)
                })
                .collect();
            assert_eq!(env, expected);
            for (key, value) in &env {
                if key == "ASTRAL_S3_ACCESS_KEY_ID" {
                    continue;
                }
                let path = Path::new(value);
                assert!(path.is_absolute() && path.is_file(), "{key}={value}");
            }
        }
    }

    /// What an env file's variable holds: a file's absolute path, or that file's content.
    enum Expected {
        File(String),
        ContentOf(String),
    }

    /// The contract: which variables each role's env file has, naming which file (Compose,
    /// Kubernetes and the messaging service rely on these names).
    fn expected_env(role: &str) -> Vec<(&'static str, Expected)> {
        let mut env = vec![
            ("ASTRAL_TLS_CA", "ca.pem".to_owned()),
            ("ASTRAL_TLS_CERT", format!("{role}.pem")),
            ("ASTRAL_TLS_KEY", format!("{role}.key")),
            ("ASTRAL_NATS_NKEY", format!("{role}.nk")),
        ];
        if role != "admin" {
            env.push(("ASTRAL_EVENT_KEYS", "event-keys.pub".to_owned()));
        }
        if ["auth", "social", "messaging"].contains(&role) {
            env.push(("ASTRAL_EVENT_SIGNING_KEY", format!("{role}.event.key")));
        }
        if role == "auth" {
            env.push(("ASTRAL_KEY_ENCRYPTION_KEY", "auth.kek".to_owned()));
        }
        // Only the messaging service sends Web Push.
        if role == "messaging" {
            env.push(("ASTRAL_VAPID_KEY_FILE", "messaging.vapid.pem".to_owned()));
        }
        let mut env: Vec<(&'static str, Expected)> = env
            .into_iter()
            .map(|(key, file)| (key, Expected::File(file)))
            .collect();
        // Only the messaging service, the attachments' owner, holds an S3 key.
        if role == "messaging" {
            env.push((
                "ASTRAL_S3_ACCESS_KEY_ID",
                Expected::ContentOf("messaging.s3.id".to_owned()),
            ));
            env.push((
                "ASTRAL_S3_SECRET_ACCESS_KEY_FILE",
                Expected::File("messaging.s3.secret".to_owned()),
            ));
        }
        env
    }

    /// Lowercase hex digits only, `bytes` bytes of them.
    fn is_lower_hex(text: &str, bytes: usize) -> bool {
        text.len() == 2 * bytes && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }

    #[test]
    fn garage_secrets_and_the_s3_key_are_in_the_formats_garage_accepts() {
        let (_temp, dir) = initialised();
        // rpc_secret: 32 bytes in hex (what `openssl rand -hex 32` gives); the admin token
        // likewise. Each file is the value alone, without a line break.
        let rpc_secret = read(&dir, "garage.rpc-secret");
        assert!(is_lower_hex(&rpc_secret, 32), "{rpc_secret:?}");
        let admin_token = read(&dir, "garage.admin-token");
        assert!(is_lower_hex(&admin_token, 32), "{admin_token:?}");
        // `garage key import` / POST /v1/key/import: `GK` and 12 bytes in hex, and a secret
        // of 32 bytes in hex.
        let key_id = read(&dir, "messaging.s3.id");
        let hex_id = key_id.strip_prefix("GK").unwrap_or_default();
        assert!(is_lower_hex(hex_id, 12), "{key_id:?}");
        let secret = read(&dir, "messaging.s3.secret");
        assert!(is_lower_hex(&secret, 32), "{secret:?}");
        let values = [&rpc_secret, &admin_token, &secret];
        for (i, a) in values.iter().enumerate() {
            assert!(values[i + 1..].iter().all(|b| a != b), "two equal values");
        }
        // Random for each deployment.
        let (_other_temp, other) = initialised();
        for name in [
            "garage.rpc-secret",
            "garage.admin-token",
            "messaging.s3.id",
            "messaging.s3.secret",
        ] {
            assert_ne!(read(&dir, name), read(&other, name), "{name}");
        }
    }

    #[test]
    fn only_the_messaging_role_is_given_the_s3_key_and_no_role_garages_secrets() {
        let (_temp, dir) = initialised();
        let canonical = dir.canonicalize().unwrap();
        let s3_secret = canonical.join("messaging.s3.secret").display().to_string();
        let key_id = read(&dir, "messaging.s3.id");
        for role in ROLES {
            let env = role_env(&dir, role).unwrap();
            let has = |value: &str| env.iter().any(|(_, v)| v == value);
            assert_eq!(has(&s3_secret), role == "messaging", "{role}");
            assert_eq!(has(&key_id), role == "messaging", "{role}");
            for (key, value) in &env {
                assert!(!value.contains("garage."), "{role}: {key}={value}");
            }
        }
    }

    #[test]
    fn renewed_certificates_are_new_and_chain_to_the_same_ca() {
        let (_temp, dir) = initialised();
        let before = read(&dir, "gateway.pem");
        let ca_before = read(&dir, "ca.pem");
        let vapid_before = read(&dir, "messaging.vapid.pem");
        renew_certificates(&dir).unwrap();
        assert_ne!(read(&dir, "gateway.pem"), before);
        assert_eq!(read(&dir, "ca.pem"), ca_before);
        // A new VAPID key would undo every browser's push subscription.
        assert_eq!(read(&dir, "messaging.vapid.pem"), vapid_before);
        let ca = pem(&dir, "ca.pem");
        let ca = ca.parse_x509().unwrap();
        for role in ROLES {
            let role_pem = pem(&dir, &format!("{role}.pem"));
            let certificate = role_pem.parse_x509().unwrap();
            certificate.verify_signature(Some(ca.public_key())).unwrap();
            assert_eq!(mode(&dir.join(format!("{role}.key"))), 0o600);
        }
        assert_eq!(
            names_in(&dir)
                .iter()
                .filter(|name| name.ends_with(".new"))
                .count(),
            0
        );
    }

    #[test]
    fn role_env_refuses_a_name_that_is_not_a_role() {
        let (_temp, dir) = initialised();
        assert!(role_env(&dir, "../secrets/auth").is_err());
    }

    #[test]
    fn event_keys_pub_holds_the_public_half_of_each_signing_key() {
        use ed25519_dalek::pkcs8::DecodePrivateKey as _;
        let (_temp, dir) = initialised();
        let public = read(&dir, "event-keys.pub");
        assert!(public.starts_with('#'));
        let lines: Vec<(&str, &str)> = public
            .lines()
            .filter(|line| !line.starts_with('#'))
            .map(|line| line.split_once(' ').unwrap())
            .collect();
        let roles: Vec<&str> = lines.iter().map(|(role, _)| *role).collect();
        assert_eq!(roles, ["auth", "social", "messaging"]);
        for (role, key) in lines {
            let pem = read(&dir, &format!("{role}.event.key"));
            assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{role}");
            let signing = ed25519_dalek::SigningKey::from_pkcs8_pem(&pem).unwrap();
            assert_eq!(STANDARD.encode(signing.verifying_key().as_bytes()), key);
        }
    }

    #[test]
    fn the_vapid_key_parses_back_and_is_readable_by_its_owner_only() {
        let (_temp, dir) = initialised();
        assert_eq!(mode(&dir.join("messaging.vapid.pem")), 0o600);
        let pem = read(&dir, "messaging.vapid.pem");
        assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
        let key = VapidKey::from_pem(&pem).unwrap();
        // Random for each deployment.
        let (_other_temp, other) = initialised();
        let other_key = VapidKey::from_pem(&read(&other, "messaging.vapid.pem")).unwrap();
        assert_ne!(key.public_key_base64url(), other_key.public_key_base64url());
    }

    #[test]
    fn a_second_init_into_the_same_directory_is_refused_and_keeps_the_vapid_key() {
        let (_temp, dir) = initialised();
        let names = names_in(&dir);
        let vapid = read(&dir, "messaging.vapid.pem");
        assert!(init(&dir, &InitOptions::default()).is_err());
        assert_eq!(names_in(&dir), names);
        assert_eq!(read(&dir, "messaging.vapid.pem"), vapid);
    }

    #[test]
    fn the_key_encryption_key_is_32_bytes_in_base64_on_one_line() {
        let (_temp, dir) = initialised();
        let text = read(&dir, "auth.kek");
        assert_eq!(text.lines().count(), 1);
        assert_eq!(STANDARD.decode(text.trim()).unwrap().len(), 32);
    }

    #[test]
    fn nats_conf_admits_the_roles_nkeys_and_nobody_else() {
        let temp = TempDir::new();
        let dir = temp.0.join("secrets");
        init(&dir, &InitOptions { nats_port: 14_567 }).unwrap();
        let config = read(&dir, "nats.conf");
        assert!(config.contains("listen: 127.0.0.1:14567\n"), "{config}");
        let jetstream = dir.canonicalize().unwrap().join("jetstream");
        let store_dir = format!("store_dir: \"{}\"", jetstream.display());
        assert!(config.contains(&store_dir), "{config}");
        assert!(!config.contains("no_auth_user"), "{config}");
        for role in ROLES {
            let seed = read(&dir, &format!("{role}.nk"));
            assert!(
                seed.starts_with("SU") && seed.lines().count() == 1,
                "{role}"
            );
            let public = nkeys::KeyPair::from_seed(seed.trim()).unwrap().public_key();
            assert!(config.contains(&format!("nkey: \"{public}\"")), "{role}");
        }
    }
}
