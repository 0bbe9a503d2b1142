//! `astral-admin`: operators' tool that talks to the services' gRPC APIs directly, and
//! writes a new deployment's secrets.

use astral::secrets::{DEFAULT_NATS_PORT, InitOptions};
use astral_common::guard::Role;
use astral_common::plane::{Plane, PlaneArgs};
use astral_proto::auth::{
    EndUserSessionsRequest, ListUsersRequest, auth_service_client::AuthServiceClient,
};
use astral_proto::messaging::{
    InspectChatRequest, messaging_service_client::MessagingServiceClient,
};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// Astral's admin tool: list users, inspect a chat, end a user's sessions, write secrets.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The auth service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_AUTH_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    auth_url: String,
    /// The messaging service's gRPC endpoint.
    #[arg(
        long,
        env = "ASTRAL_MESSAGING_URL",
        default_value = "http://127.0.0.1:50053"
    )]
    messaging_url: String,
    /// The admin certificate (`DIR/admin.env` of `astral-admin secrets init DIR`), or
    /// `ASTRAL_INSECURE_DEV=1` against an insecure development setup.
    #[command(flatten)]
    plane: PlaneArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Lists users by username, a page at a time.
    Users {
        /// Start after this username.
        #[arg(long, default_value = "")]
        after: String,
        /// How many (1–1000; 100 unless given).
        #[arg(long)]
        limit: Option<i64>,
    },
    /// Shows a chat: kind, name, owner, members, last number, last message.
    Chat { chat_id: String },
    /// Ends every session of a user (they must log in again everywhere).
    EndSessions { user_id: String },
    /// A deployment's secrets.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
}

#[derive(Subcommand, Debug)]
enum SecretsCommand {
    /// Writes a new deployment's secrets into DIR: a CA and a certificate per role, NATS
    /// nkeys and nats.conf, event signing keys, the auth key-encryption key, Garage's
    /// secrets and messaging's S3 key, messaging's Web Push (VAPID) key, an env file per
    /// role. DIR must be missing or empty.
    Init {
        dir: PathBuf,
        /// The port nats.conf listens on (on 127.0.0.1).
        #[arg(long, default_value_t = DEFAULT_NATS_PORT)]
        nats_port: u16,
    },
    /// Gives every role in DIR a new key and certificate from DIR's CA; restart the
    /// processes one by one to take them up (old and new certificates trust each other).
    RenewCerts { dir: PathBuf },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The all-in-one's sockets live in its private data directory: reaching them is the proof.
    let local = [&args.auth_url, &args.messaging_url]
        .iter()
        .all(|url| url.starts_with("unix://"));
    let plane = || {
        if local {
            Ok(Plane::trusted())
        } else {
            Plane::from_args(&args.plane)
        }
    };
    match args.command {
        Command::Users { after, limit } => {
            let mut auth = AuthServiceClient::new(plane()?.channel(&args.auth_url, Role::Auth)?);
            let users = auth
                .list_users(ListUsersRequest { after, limit })
                .await?
                .into_inner()
                .users;
            for user in users {
                println!("{}\t{}", user.id, user.username);
            }
        }
        Command::Chat { chat_id } => {
            let mut messaging = MessagingServiceClient::new(
                plane()?.channel(&args.messaging_url, Role::Messaging)?,
            );
            let chat = messaging
                .inspect_chat(InspectChatRequest { chat_id })
                .await?
                .into_inner();
            println!(
                "id\t{}\nkind\t{}\nname\t{}\nowner\t{}\nlast_seq\t{}\nread_only\t{}",
                chat.id,
                chat.kind().json_name(),
                chat.name,
                chat.owner_id,
                chat.last_seq,
                chat.read_only
            );
            for member in chat.members {
                println!("member\t{}\t{}", member.id, member.username);
            }
            if let Some(last) = chat.last_message {
                println!(
                    "last_message\t{}\t{}\t{}",
                    last.id,
                    last.author_id,
                    if last.deleted {
                        "(deleted)"
                    } else {
                        &last.content
                    }
                );
            }
        }
        Command::EndSessions { user_id } => {
            let mut auth = AuthServiceClient::new(plane()?.channel(&args.auth_url, Role::Auth)?);
            let ended = auth
                .end_user_sessions(EndUserSessionsRequest { user_id })
                .await?
                .into_inner()
                .ended_session_ids;
            println!("ended {} session(s)", ended.len());
        }
        Command::Secrets { command } => secrets(command)?,
    }
    Ok(())
}

fn secrets(command: SecretsCommand) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Init { dir, nats_port } => {
            astral::secrets::init(&dir, &InitOptions { nats_port })?;
            println!("wrote a deployment's secrets into {}", dir.display());
        }
        SecretsCommand::RenewCerts { dir } => {
            astral::secrets::renew_certificates(&dir)?;
            println!("renewed every role's certificate in {}", dir.display());
        }
    }
    Ok(())
}
