//! The SQLite [`Store`]: WAL journal, `synchronous=NORMAL` (a committed transaction survives a
//! crash or SIGKILL of the server; only an OS crash or power loss can lose the last commits),
//! one writer connection (SQLite allows one writer at a time; a single-connection pool queues
//! writers in the process instead of failing them with `SQLITE_BUSY`) and a pool of readers.
//! Migrations (`planner/server/migrations/NNNN_*.sql`, embedded) are applied at open.

use super::{
    BoxFuture, CredentialOwner, DeviceRow, EnrollRefusal, NewEnrollment, NewReport, NewToken,
    Store, StoreError, StoreResult,
};
use fleetfit_core::api::{StoredReport, TokenInfo};
use sqlx::Row as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::str::FromStr as _;
use std::time::Duration;

/// The embedded migrations, in version order. Add `NNNN_name.sql` files and a line here.
const MIGRATIONS: &[(i64, &str, &str)] =
    &[(1, "init", include_str!("../../migrations/0001_init.sql"))];

fn migrator() -> Migrator {
    let migrations: Vec<Migration> = MIGRATIONS
        .iter()
        .map(|(v, d, sql)| {
            Migration::new(
                *v,
                Cow::Borrowed(*d),
                MigrationType::Simple,
                Cow::Borrowed(*sql),
                false,
            )
        })
        .collect();
    Migrator {
        migrations: Cow::Owned(migrations),
        ..Migrator::DEFAULT
    }
}

/// The SQLite store.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    writer: SqlitePool,
    readers: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://PATH` or `sqlite::memory:`)
    /// and applies pending migrations.
    pub async fn open(url: &str) -> StoreResult<SqliteStore> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        migrator().run(&writer).await?;
        let readers = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteStore { writer, readers })
    }
}

fn labels_json(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_else(|_| "{}".to_owned())
}

fn parse_labels(text: &str) -> StoreResult<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Data(format!("labels: {e}")))
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

impl Store for SqliteStore {
    fn ping(&self) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query("SELECT 1").execute(&self.readers).await?;
            Ok(())
        })
    }

    fn create_token(&self, t: NewToken) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO enrollment_tokens (id, hash, created_at, expires_at, uses, uses_left, labels) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&t.id)
            .bind(&t.hash)
            .bind(t.created_at)
            .bind(t.expires_at)
            .bind(i64::from(t.uses))
            .bind(i64::from(t.uses))
            .bind(labels_json(&t.labels))
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn list_tokens(&self) -> BoxFuture<'_, StoreResult<Vec<TokenInfo>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, created_at, expires_at, uses, uses_left, labels, revoked_at \
                 FROM enrollment_tokens ORDER BY created_at, id",
            )
            .fetch_all(&self.readers)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(TokenInfo {
                        id: r.try_get("id")?,
                        created_at: r.try_get("created_at")?,
                        expires_at: r.try_get("expires_at")?,
                        uses: to_u32(r.try_get("uses")?),
                        uses_left: to_u32(r.try_get("uses_left")?),
                        labels: parse_labels(&r.try_get::<String, _>("labels")?)?,
                        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                    })
                })
                .collect()
        })
    }

    fn revoke_token(&self, id: String, now: i64) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE enrollment_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            )
            .bind(now)
            .bind(&id)
            .execute(&self.writer)
            .await?;
            if r.rows_affected() > 0 {
                return Ok(true);
            }
            let exists = sqlx::query("SELECT 1 FROM enrollment_tokens WHERE id = ?")
                .bind(&id)
                .fetch_optional(&self.writer)
                .await?;
            Ok(exists.is_some())
        })
    }

    fn enroll(
        &self,
        token_hash: String,
        now: i64,
        e: NewEnrollment,
    ) -> BoxFuture<'_, StoreResult<Result<(), EnrollRefusal>>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            let Some(tok) = sqlx::query(
                "SELECT id, expires_at, uses_left, labels, revoked_at FROM enrollment_tokens WHERE hash = ?",
            )
            .bind(&token_hash)
            .fetch_optional(&mut *tx)
            .await?
            else {
                return Ok(Err(EnrollRefusal::Unknown));
            };
            if tok.try_get::<Option<i64>, _>("revoked_at")?.is_some() {
                return Ok(Err(EnrollRefusal::Revoked));
            }
            if tok.try_get::<i64, _>("expires_at")? <= now {
                return Ok(Err(EnrollRefusal::Expired));
            }
            if tok.try_get::<i64, _>("uses_left")? <= 0 {
                return Ok(Err(EnrollRefusal::Exhausted));
            }
            let token_id: String = tok.try_get("id")?;
            let mut labels = e.labels.clone();
            labels.extend(parse_labels(&tok.try_get::<String, _>("labels")?)?);
            let existing = sqlx::query("SELECT revoked_at FROM devices WHERE id = ?")
                .bind(&e.device_id)
                .fetch_optional(&mut *tx)
                .await?;
            match existing {
                Some(row) if row.try_get::<Option<i64>, _>("revoked_at")?.is_some() => {
                    return Ok(Err(EnrollRefusal::DeviceRevoked));
                }
                Some(_) => {
                    sqlx::query(
                        "UPDATE devices SET hostname = ?, labels = ?, credential_id = ?, \
                         credential_hash = ?, token_id = ?, last_seen = ? WHERE id = ?",
                    )
                    .bind(&e.hostname)
                    .bind(labels_json(&labels))
                    .bind(&e.credential_id)
                    .bind(&e.credential_hash)
                    .bind(&token_id)
                    .bind(now)
                    .bind(&e.device_id)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO devices (id, hostname, labels, credential_id, credential_hash, \
                         token_id, enrolled_at, last_seen, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'enrolled')",
                    )
                    .bind(&e.device_id)
                    .bind(&e.hostname)
                    .bind(labels_json(&labels))
                    .bind(&e.credential_id)
                    .bind(&e.credential_hash)
                    .bind(&token_id)
                    .bind(now)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            sqlx::query("UPDATE enrollment_tokens SET uses_left = uses_left - 1 WHERE id = ?")
                .bind(&token_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Ok(()))
        })
    }

    fn credential_owner(
        &self,
        hash: String,
    ) -> BoxFuture<'_, StoreResult<Option<CredentialOwner>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT id, credential_id, revoked_at FROM devices WHERE credential_hash = ?",
            )
            .bind(&hash)
            .fetch_optional(&self.readers)
            .await?;
            row.map(|r| {
                Ok(CredentialOwner {
                    device_id: r.try_get("id")?,
                    credential_id: r.try_get("credential_id")?,
                    revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                })
            })
            .transpose()
        })
    }

    fn revoke_device(&self, id: String, now: i64) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let r = sqlx::query(
                "UPDATE devices SET revoked_at = COALESCE(revoked_at, ?), state = 'revoked' WHERE id = ?",
            )
            .bind(now)
            .bind(&id)
            .execute(&self.writer)
            .await?;
            Ok(r.rows_affected() > 0)
        })
    }

    fn put_profile(
        &self,
        device_id: String,
        profile_json: String,
        digest: String,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            sqlx::query(
                "UPDATE devices SET profile = ?, profile_digest = ?, last_seen = ? WHERE id = ?",
            )
            .bind(&profile_json)
            .bind(&digest)
            .bind(now)
            .bind(&device_id)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn profile(&self, device_id: String) -> BoxFuture<'_, StoreResult<Option<(String, String)>>> {
        Box::pin(async move {
            let row = sqlx::query(
                "SELECT profile, profile_digest FROM devices WHERE id = ? AND profile IS NOT NULL",
            )
            .bind(&device_id)
            .fetch_optional(&self.readers)
            .await?;
            row.map(|r| Ok((r.try_get("profile")?, r.try_get("profile_digest")?)))
                .transpose()
        })
    }

    fn profiles(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT profile FROM devices WHERE profile IS NOT NULL AND revoked_at IS NULL ORDER BY id",
            )
            .fetch_all(&self.readers)
            .await?;
            rows.iter()
                .map(|r| Ok(r.try_get::<String, _>("profile")?))
                .collect()
        })
    }

    fn put_report(&self, r: NewReport) -> BoxFuture<'_, StoreResult<bool>> {
        Box::pin(async move {
            let mut tx = self.writer.begin().await?;
            let ins = sqlx::query(
                "INSERT INTO readiness_reports (device_id, report_id, state, body, received_at) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, report_id) DO NOTHING",
            )
            .bind(&r.device_id)
            .bind(&r.report_id)
            .bind(&r.state)
            .bind(&r.body)
            .bind(r.received_at)
            .execute(&mut *tx)
            .await?;
            if ins.rows_affected() == 0 {
                tx.rollback().await?;
                return Ok(false);
            }
            sqlx::query(
                "UPDATE devices SET state = ?, model = ?, quant = ?, last_error = ?, last_seen = ? \
                 WHERE id = ?",
            )
            .bind(&r.state)
            .bind(&r.model)
            .bind(&r.quant)
            .bind(&r.error)
            .bind(r.received_at)
            .bind(&r.device_id)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(true)
        })
    }

    fn heartbeat(
        &self,
        device_id: String,
        state: Option<String>,
        serving: Option<String>,
        now: i64,
    ) -> BoxFuture<'_, StoreResult<()>> {
        Box::pin(async move {
            let (model, quant) = match serving.as_deref().map(|s| s.split_once(':')) {
                Some(Some((m, q))) => (Some(m.to_owned()), Some(q.to_owned())),
                Some(None) => (serving.clone(), None),
                None => (None, None),
            };
            sqlx::query(
                "UPDATE devices SET last_seen = ?, state = COALESCE(?, state), \
                 model = COALESCE(?, model), quant = COALESCE(?, quant) WHERE id = ?",
            )
            .bind(now)
            .bind(&state)
            .bind(&model)
            .bind(&quant)
            .bind(&device_id)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn devices(&self) -> BoxFuture<'_, StoreResult<Vec<DeviceRow>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT id, hostname, state, model, quant, last_seen, last_error, revoked_at, \
                 profile_digest FROM devices ORDER BY id",
            )
            .fetch_all(&self.readers)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(DeviceRow {
                        id: r.try_get("id")?,
                        hostname: r.try_get("hostname")?,
                        state: r.try_get("state")?,
                        model: r.try_get("model")?,
                        quant: r.try_get("quant")?,
                        last_seen: r.try_get("last_seen")?,
                        last_error: r.try_get("last_error")?,
                        revoked: r.try_get::<Option<i64>, _>("revoked_at")?.is_some(),
                        profile_digest: r.try_get("profile_digest")?,
                    })
                })
                .collect()
        })
    }

    fn reports(&self, device_id: Option<String>) -> BoxFuture<'_, StoreResult<Vec<StoredReport>>> {
        Box::pin(async move {
            let rows = sqlx::query(
                "SELECT device_id, report_id, state, received_at FROM readiness_reports \
                 WHERE (? IS NULL OR device_id = ?) ORDER BY device_id, report_id",
            )
            .bind(&device_id)
            .bind(&device_id)
            .fetch_all(&self.readers)
            .await?;
            rows.iter()
                .map(|r| {
                    Ok(StoredReport {
                        device: r.try_get("device_id")?,
                        report_id: r.try_get("report_id")?,
                        state: r.try_get("state")?,
                        received_at: r.try_get("received_at")?,
                    })
                })
                .collect()
        })
    }
}
