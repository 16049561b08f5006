//! The `consentry` command: `serve` (the default), `migrate`, `token`, `policies check`,
//! `keys rotate`, `openapi`, `console-link`.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use chrono::TimeDelta;
use clap::{Parser, Subcommand};
use serde_json::json;

use crate::audit::{self, Actor, AuditEntry};
use crate::auth::{keys, token, KeyRing, Role};
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Settings};
use crate::server::{openapi_document, Application};
use crate::storage::{self, Database, StorageError};

#[derive(Debug, Parser)]
#[command(
    name = "consentry",
    version,
    about = "Consents, the consent gate, surveys and a tamper-evident audit log.",
    long_about = "Consents, the consent gate, surveys and a tamper-evident audit log.\n\n\
        Every setting below can be given as a flag or as the CONSENTRY_* environment variable \
        shown beside it; with none, `consentry` serves on 127.0.0.1:8080 with an embedded SQLite \
        database under ./data."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print a bearer token this server accepts (same data folder and issuer).
    Token {
        /// admin, compliance, service or subject.
        #[arg(long)]
        role: String,
        /// The subject id for the subject role; the caller's name for the others.
        #[arg(long)]
        sub: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: i64,
    },
    /// Print a single-use link into the compliance console for an officer (the configured
    /// public URL; valid once, for the configured link lifetime).
    ConsoleLink {
        /// compliance or admin.
        #[arg(long)]
        role: String,
        /// The officer's name, recorded with everything they do in the console.
        #[arg(long)]
        sub: String,
        /// The console's language: en or ar.
        #[arg(long)]
        locale: Option<String>,
    },
    /// Policy files.
    #[command(subcommand)]
    Policies(PoliciesCommand),
    /// Signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document.
    Openapi,
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Apply `policies/retention.toml` now (the server also does it at start and every hour).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Survey definitions.
    #[command(subcommand)]
    Surveys(SurveysCommand),
    /// Seed sample subjects (`demo-000001`...) with consents and preferences, and the
    /// survey templates.
    Demo {
        /// How many subjects.
        #[arg(long, default_value_t = 100)]
        subjects: usize,
        /// Also append this many synthetic audit events (for audit benchmarks).
        #[arg(long, default_value_t = 0)]
        audit_events: usize,
        /// Also record this many NPS responses to the NPS template, one per subject
        /// (created bare when missing), over the last year (for report benchmarks).
        #[arg(long, default_value_t = 0)]
        survey_responses: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Delete or empty what is past its retention; prints what was done.
    Run,
}

#[derive(Debug, Subcommand)]
pub enum SurveysCommand {
    /// Create surveys from definition files (JSON, as `POST /v1/surveys` takes them);
    /// without files, the built-in templates. A key that exists is skipped.
    Import { files: Vec<std::path::PathBuf> },
}

#[derive(Debug, Subcommand)]
pub enum PoliciesCommand {
    /// Load and check the policy files without serving; exit 1 naming each problem.
    Check,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check an export (JSON Lines or CSV) offline; exit 1 naming the first bad line.
    /// One of --jwks or --no-signature is required.
    #[command(group(clap::ArgGroup::new("keys").required(true).args(["jwks", "no_signature"])))]
    Verify {
        /// The export file.
        file: std::path::PathBuf,
        /// The service's key set (`/.well-known/jwks.json`), to check the closing
        /// signature, which covers the header's filters and range and the last hash.
        #[arg(long)]
        jwks: Option<std::path::PathBuf>,
        /// Check the chain alone, without the signature: the header's claims (filters,
        /// range) then prove nothing.
        #[arg(long)]
        no_signature: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; it signs from the next start, older keys keep verifying.
    Rotate,
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let Cli { settings, command } = cli;
    // Held to the end of `run`: dropping it flushes the log lines still queued.
    let _log_writer = crate::telemetry::init(&settings.log, settings.log_format);
    let config = settings.into_config()?;
    match command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Migrate => {
            let applied = storage::migrate(&config.database_url, &config.pool)?;
            println!(
                "{}: {} migration(s) applied",
                config.database_url.redacted(),
                applied.len()
            );
            Ok(())
        }
        Command::Token { role, sub, ttl } => mint_token(&config, &role, sub, ttl),
        Command::ConsoleLink { role, sub, locale } => console_link(&config, &role, &sub, locale),
        Command::Policies(PoliciesCommand::Check) => {
            let policies = crate::policy::load(&config.policies_dir)?;
            println!(
                "{}: ok — {} purposes, {} jurisdictions, {} data categories, notices in {} (revision {})",
                config.policies_dir.display(),
                policies.purposes().len(),
                policies.jurisdictions.iter().count(),
                policies.taxonomy.iter().count(),
                policies.notices.locales().collect::<Vec<_>>().join(", "),
                policies.revision
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate) => {
            let kid = keys::rotate(&config.data_dir, SystemClock.now())?;
            println!("{kid}");
            Ok(())
        }
        Command::Retention(RetentionCommand::Run) => {
            let (policies, db, pseudonyms) = open_offline(&config)?;
            let now = SystemClock.now();
            let report = actix_web::rt::System::new().block_on(db.run(move |conn| {
                crate::dsar::retention::run(conn, &policies.retention, &pseudonyms, now)
            }))?;
            println!("{}", serde_json::to_string(&report)?);
            Ok(())
        }
        Command::Surveys(SurveysCommand::Import { files }) => {
            let surveys = if files.is_empty() {
                crate::surveys::templates::built_in()?
            } else {
                files
                    .iter()
                    .map(|f| crate::surveys::templates::read(f))
                    .collect::<anyhow::Result<Vec<_>>>()?
            };
            let (policies, db, pseudonyms) = open_offline(&config)?;
            let now = SystemClock.now();
            let lines = actix_web::rt::System::new().block_on(db.run(move |conn| {
                crate::demo::import_surveys(conn, &policies, &pseudonyms, surveys, now)
            }))?;
            for line in lines {
                println!("{line}");
            }
            Ok(())
        }
        Command::Demo {
            subjects,
            audit_events,
            survey_responses,
        } => {
            let policies = crate::policy::load(&config.policies_dir)?;
            let policies_for_import = policies.clone();
            let db = Database::open(&config.database_url, &config.pool)?;
            let now = SystemClock.now();
            let pseudonyms = crate::audit::Pseudonymizer::load_or_generate(
                &config.data_dir,
                config.audit_pseudonym_secret.as_deref(),
            )?;
            let pseudonyms = std::sync::Arc::new(pseudonyms);
            let seeding = pseudonyms.clone();
            let created =
                actix_web::rt::System::new().block_on(db.run(move |conn| {
                    crate::demo::seed(conn, &policies, &seeding, subjects, now)
                }))?;
            println!("{created} subject(s) created ({subjects} asked; existing ones kept)");
            let templates = crate::surveys::templates::built_in()?;
            let (importing, for_import) = (pseudonyms.clone(), policies_for_import);
            let lines = actix_web::rt::System::new().block_on(db.run(move |conn| {
                crate::demo::import_surveys(conn, &for_import, &importing, templates, now)
            }))?;
            for line in lines {
                println!("{line}");
            }
            if survey_responses > 0 {
                let recorded =
                    actix_web::rt::System::new().block_on(db.run(move |conn| {
                        crate::demo::survey_responses(conn, survey_responses, now)
                    }))?;
                println!("{recorded} survey response(s) recorded");
            }
            if audit_events > 0 {
                let appended = actix_web::rt::System::new().block_on(db.run(move |conn| {
                    crate::demo::audit_events(conn, &pseudonyms, subjects.max(1), audit_events, now)
                }))?;
                println!("{appended} audit event(s) appended");
            }
            Ok(())
        }
        Command::Audit(AuditCommand::Verify {
            file,
            jwks,
            no_signature: _,
        }) => {
            let reader = std::io::BufReader::new(
                std::fs::File::open(&file)
                    .with_context(|| format!("reading {}", file.display()))?,
            );
            let jwks = jwks
                .map(|path| -> anyhow::Result<serde_json::Value> {
                    let text = std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))?;
                    serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a JSON key set", path.display()))
                })
                .transpose()?;
            let report = crate::audit::export::verify_reader(reader, jwks.as_ref())
                .map_err(|problem| anyhow::anyhow!("{}: {problem}", file.display()))?;
            let range = match (report.header.first_seq, report.header.last_seq) {
                (Some(first), Some(last)) => format!("events {first} to {last}"),
                _ => "no event".to_owned(),
            };
            println!(
                "{}: ok — {} events and {} links, {range}, pinning event {} ({}){}",
                file.display(),
                report.events,
                report.links,
                report.head_seq,
                report.head_hash,
                if report.signature_checked {
                    "; signature verified (header's filters and range included)"
                } else {
                    "; signature NOT checked (--no-signature): the chain between the lines holds, the header's claims are unproven"
                }
            );
            Ok(())
        }
        Command::Openapi => {
            println!("{}", serde_json::to_string_pretty(&openapi_document())?);
            Ok(())
        }
    }
}

/// What a command that works on the data without serving needs.
fn open_offline(
    config: &Config,
) -> anyhow::Result<(
    crate::policy::Policies,
    Database,
    crate::audit::Pseudonymizer,
)> {
    Ok((
        crate::policy::load(&config.policies_dir)?,
        Database::open(&config.database_url, &config.pool)?,
        crate::audit::Pseudonymizer::load_or_generate(
            &config.data_dir,
            config.audit_pseudonym_secret.as_deref(),
        )?,
    ))
}

fn serve(config: Config) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        let app = Application::build(config, Arc::new(SystemClock)).await?;
        app.run_until_stopped().await.context("serving")
    })
}

/// Makes a console link as the operator and records that it was made (never the link).
fn console_link(
    config: &Config,
    role: &str,
    sub: &str,
    locale: Option<String>,
) -> anyhow::Result<()> {
    use crate::portal::i18n::Lang;
    use crate::portal::session::{self, Holder, LinkError, OFFICER_ROLES};
    let role = Role::parse(role)
        .filter(|r| OFFICER_ROLES.contains(r))
        .with_context(|| format!("--role must be compliance or admin (got `{role}`)"))?;
    token::check_sub(role, Some(sub)).map_err(|e| anyhow::anyhow!("--sub: {e}"))?;
    let locale = locale
        .map(|tag| {
            Lang::from_tag(&tag)
                .map(|l| l.code().to_owned())
                .with_context(|| format!("--locale must be en or ar (got `{tag}`)"))
        })
        .transpose()?;
    let db = Database::open(&config.database_url, &config.pool)?;
    let pseudonyms = crate::audit::Pseudonymizer::load_or_generate(
        &config.data_dir,
        config.audit_pseudonym_secret.as_deref(),
    )?;
    let now = SystemClock.now();
    let lifetime = config.portal.durations.link;
    let name = sub.to_owned();
    let holder = Holder::Officer {
        sub: name.clone(),
        role,
    };
    let link = actix_web::rt::System::new().block_on(db.run(move |conn| {
        storage::write_transaction(conn, |conn| {
            let link = session::create_link(conn, &holder, locale.as_deref(), None, now, lifetime)?;
            audit::record(
                conn,
                &pseudonyms,
                AuditEntry {
                    actor: &Actor::operator(),
                    action: "portal.link_issued",
                    subject_id: None,
                    payload: json!({"kind": "console", "role": role.as_str(), "sub": name, "expires_at": link.expires_at}),
                    at: now,
                },
            )?;
            Ok::<_, LinkError>(link)
        })
    }))?;
    println!(
        "{}",
        config.portal.link(&format!("/portal/enter/{}", link.token))
    );
    Ok(())
}

/// Mints a token and records that it was minted (role, id and expiry, never the token).
fn mint_token(config: &Config, role: &str, sub: Option<String>, ttl: i64) -> anyhow::Result<()> {
    let role = Role::parse(role).with_context(|| {
        format!("--role must be one of admin, compliance, service, subject (got `{role}`)")
    })?;
    anyhow::ensure!(
        (1..=315_360_000).contains(&ttl),
        "--ttl must be between 1 second and 10 years"
    );
    token::check_sub(role, sub.as_deref()).map_err(|e| anyhow::anyhow!("--sub: {e}"))?;
    let now = SystemClock.now();
    let keys =
        KeyRing::load_or_generate(&config.data_dir, config.signing_key_file.as_deref(), now)?;
    let minted = token::mint(&keys, &config.jwt, role, sub, TimeDelta::seconds(ttl), now)?;
    let db = Database::open(&config.database_url, &config.pool)?;
    let claims = minted.claims.clone();
    let pseudonyms = crate::audit::Pseudonymizer::load_or_generate(
        &config.data_dir,
        config.audit_pseudonym_secret.as_deref(),
    )?;
    actix_web::rt::System::new().block_on(db.run(move |conn| {
        audit::record_alone(
            conn,
            &pseudonyms,
            AuditEntry {
                actor: &Actor::operator(),
                action: "token.minted",
                subject_id: (role == Role::Subject).then_some(claims.sub.as_deref()).flatten(),
                payload: json!({"role": claims.role, "jti": claims.jti, "exp": claims.exp, "sub": claims.sub}),
                at: now,
            },
        )?;
        Ok::<_, StorageError>(())
    }))?;
    println!("{}", minted.token);
    Ok(())
}
