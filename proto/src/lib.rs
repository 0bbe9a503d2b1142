//! Astral's contracts: generated gRPC and event types, and the NATS subjects events travel on.

/// The generated code, nested as the proto packages are (`astral.auth.v1` → `astral::auth::v1`)
/// so that cross-package references resolve.
pub mod astral {
    pub mod auth {
        pub mod v1 {
            tonic::include_proto!("astral.auth.v1");
        }
    }
    pub mod social {
        pub mod v1 {
            tonic::include_proto!("astral.social.v1");
        }
    }
    pub mod messaging {
        pub mod v1 {
            tonic::include_proto!("astral.messaging.v1");
        }
    }
    pub mod events {
        pub mod v1 {
            tonic::include_proto!("astral.events.v1");
        }
    }
}

/// `astral.auth.v1`: accounts, sessions, token keys.
pub use astral::auth::v1 as auth;
/// `astral.events.v1`: the envelope every service publishes after its transaction commits.
pub use astral::events::v1 as events;
/// `astral.messaging.v1`: chats and messages.
pub use astral::messaging::v1 as messaging;
/// `astral.social.v1`: friend requests and friendships.
pub use astral::social::v1 as social;

impl messaging::ChatKind {
    /// How the HTTP API and the events' JSON name it: `direct` or `group` (empty when
    /// unspecified).
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Direct => "direct",
            Self::Group => "group",
            Self::Unspecified => "",
        }
    }
}

impl messaging::SystemChangeType {
    /// How the HTTP API and the events' JSON name it (`created`, `renamed`, `member_added`,
    /// `member_removed`, `member_left`, `owner_changed`; empty when unspecified).
    pub fn json_name(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Renamed => "renamed",
            Self::MemberAdded => "member_added",
            Self::MemberRemoved => "member_removed",
            Self::MemberLeft => "member_left",
            Self::OwnerChanged => "owner_changed",
            Self::Unspecified => "",
        }
    }
}

/// The encoded `FileDescriptorSet` of every proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("astral_descriptor");

pub mod subjects {
    //! The NATS subjects of `docs/api.md`: `user.<id>` and `chat.<chat_id>`.

    /// What one user must learn wherever they are.
    pub fn user(user_id: &str) -> String {
        format!("user.{user_id}")
    }

    /// What happens inside one chat.
    pub fn chat(chat_id: &str) -> String {
        format!("chat.{chat_id}")
    }

    /// Every revoked session (`session.ended`), for gateways to refuse its access tokens.
    pub const SESSIONS_REVOKED: &str = "sessions.revoked";

    /// Every friendship made (`friend_request.accepted`) or ended (`friend.removed`), for the
    /// messaging service to know while social cannot answer.
    pub const FRIENDSHIPS: &str = "friendships";

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn subjects_follow_the_contract() {
            assert_eq!(user("42"), "user.42");
            assert_eq!(chat("1_2"), "chat.1_2");
        }
    }
}
