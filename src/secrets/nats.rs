//! NATS credentials: an nkey per role, and a nats-server configuration that admits exactly
//! those keys (no anonymous user), each limited to the subjects its role needs.

use super::files::write_private;
use super::{Layout, Role};
use astral_proto::subjects;

/// Where request-reply answers arrive (async-nats' default inbox prefix).
const INBOX: &str = "_INBOX.>";

/// A role's nkey public key (`U…`), which nats.conf admits.
pub(super) struct PublicNkey {
    role: Role,
    key: String,
}

/// What a role may do on the bus.
struct Permissions {
    publish: Publish,
    subscribe: Vec<String>,
}

enum Publish {
    Allow(Vec<String>),
    Nothing,
}

/// Writes `<role>.nk` (a user seed, `SU…`) for every role; their public keys.
pub(super) fn write_nkeys(layout: &Layout) -> anyhow::Result<Vec<PublicNkey>> {
    Role::ALL
        .into_iter()
        .map(|role| {
            let pair = nkeys::KeyPair::new_user();
            write_private(&layout.nkey(role), &format!("{}\n", pair.seed()?))?;
            Ok(PublicNkey {
                role,
                key: pair.public_key(),
            })
        })
        .collect()
}

/// Writes `nats.conf`: listen on 127.0.0.1:`port`, JetStream in the secrets directory, and
/// one user per role.
pub(super) fn write_config(layout: &Layout, port: u16, nkeys: &[PublicNkey]) -> anyhow::Result<()> {
    let mut config = format!(
        "# nats-server configuration of one Astral deployment (astral-admin secrets init).\n\
         # Only the roles' nkeys may connect: there is no anonymous user.\n\
         listen: 127.0.0.1:{port}\n\n\
         jetstream {{\n  store_dir: \"{}\"\n}}\n\n\
         authorization {{\n  users = [\n",
        layout.jetstream().display()
    );
    for nkey in nkeys {
        config.push_str(&user(nkey, &permissions(nkey.role)));
    }
    config.push_str("  ]\n}\n");
    write_private(&layout.nats_config(), &config)
}

/// What each role publishes and subscribes to: events on `user.*`, `chat.*`,
/// `sessions.revoked` and `friendships` (see `astral_proto::subjects`), answers on its inbox.
fn permissions(role: Role) -> Permissions {
    let user = subjects::user("*");
    let chat = subjects::chat("*");
    let revoked = subjects::SESSIONS_REVOKED.to_owned();
    let friendships = subjects::FRIENDSHIPS.to_owned();
    let inbox = INBOX.to_owned();
    match role {
        Role::Auth => Permissions {
            publish: Publish::Allow(vec![user, revoked]),
            subscribe: vec![inbox],
        },
        Role::Social => Permissions {
            publish: Publish::Allow(vec![user, friendships]),
            subscribe: vec![revoked, inbox],
        },
        Role::Messaging => Permissions {
            publish: Publish::Allow(vec![user, chat]),
            subscribe: vec![revoked, friendships, inbox],
        },
        Role::Gateway => Permissions {
            publish: Publish::Nothing,
            subscribe: vec![user, chat, revoked, inbox],
        },
        Role::Admin => Permissions {
            publish: Publish::Nothing,
            subscribe: vec![inbox],
        },
    }
}

/// One entry of `users = [...]`.
fn user(nkey: &PublicNkey, permissions: &Permissions) -> String {
    let publish = match &permissions.publish {
        Publish::Allow(subjects) => format!("allow: {}", list(subjects)),
        Publish::Nothing => format!("deny: {}", list(&[">".to_owned()])),
    };
    format!(
        "    # {}\n    {{\n      nkey: \"{}\"\n      permissions: {{\n        \
         publish: {{ {publish} }}\n        subscribe: {{ allow: {} }}\n      }}\n    }}\n",
        nkey.role.as_str(),
        nkey.key,
        list(&permissions.subscribe)
    )
}

/// `["a", "b"]`
fn list(subjects: &[String]) -> String {
    let quoted: Vec<String> = subjects.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(", "))
}
